//! The routing lease on a real Redis: one leader at a time, a new epoch
//! for each, and a stalled former leader's writes refused.

use std::time::Duration;

use haven_cluster::{Grant, Lease, is_fenced};
use haven_testkit::RedisServer;

/// A leader's write: one more to a counter, refused when fenced.
const COUNT: &str = "if fenced() then return redis.error_reply('FENCED') end\n\
                     return redis.call('INCR', KEYS[2])";

async fn write(
    con: &mut redis::aio::MultiplexedConnection,
    lease: &Lease,
    epoch: u64,
) -> redis::RedisResult<i64> {
    Lease::fenced(COUNT)
        .key(lease.epoch_key())
        .key("hv:ctl:{lease}:count")
        .arg(epoch)
        .invoke_async(con)
        .await
}

#[tokio::test]
async fn one_leader_at_a_time_and_a_stalled_one_is_fenced() {
    let redis = RedisServer::start().await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let ttl = Duration::from_millis(300);
    let a = Lease::new("hv:", "node-a", ttl);
    let b = Lease::new("hv:", "node-b", ttl);

    assert_eq!(a.acquire(&mut con).await.unwrap(), Grant::Leader(1));
    assert_eq!(b.acquire(&mut con).await.unwrap(), Grant::Follower(1));
    assert_eq!(b.holder(&mut con).await.unwrap().as_deref(), Some("node-a"));
    // Holding on keeps the epoch.
    assert_eq!(a.acquire(&mut con).await.unwrap(), Grant::Leader(1));
    assert!(a.renew(&mut con, 1).await.unwrap());
    assert_eq!(write(&mut con, &a, 1).await.unwrap(), 1);

    // A stalls past its lease: B takes over with a new epoch.
    tokio::time::sleep(ttl * 2).await;
    assert_eq!(b.acquire(&mut con).await.unwrap(), Grant::Leader(2));
    // A wakes up: it can neither renew nor write.
    assert!(!a.renew(&mut con, 1).await.unwrap());
    let stale = write(&mut con, &a, 1).await.unwrap_err();
    assert!(is_fenced(&stale), "{stale}");
    assert_eq!(write(&mut con, &b, 2).await.unwrap(), 2);
    assert_eq!(a.acquire(&mut con).await.unwrap(), Grant::Follower(2));
    // Nor can it release what is no longer its.
    assert!(!a.release(&mut con, 1).await.unwrap());

    // B stops cleanly: A takes over at once, without waiting out the lease.
    assert!(b.release(&mut con, 2).await.unwrap());
    assert_eq!(a.acquire(&mut con).await.unwrap(), Grant::Leader(3));
    assert!(is_fenced(&write(&mut con, &b, 2).await.unwrap_err()));
}

#[tokio::test]
async fn nodes_racing_for_the_lease_get_exactly_one_leader() {
    let redis = RedisServer::start().await;
    let client = redis::Client::open(redis.url()).unwrap();
    for round in 0..20u64 {
        let mut racers = Vec::new();
        for n in 0..8 {
            let mut con = client.get_multiplexed_async_connection().await.unwrap();
            let lease = Lease::new(
                &format!("hv:{round}:"),
                &format!("node-{n}"),
                Duration::from_secs(5),
            );
            racers.push(tokio::spawn(async move {
                lease.acquire(&mut con).await.unwrap()
            }));
        }
        let mut leaders = 0;
        for racer in racers {
            match racer.await.unwrap() {
                Grant::Leader(epoch) => {
                    assert_eq!(epoch, 1);
                    leaders += 1;
                }
                Grant::Follower(epoch) => assert_eq!(epoch, 1),
            }
        }
        assert_eq!(leaders, 1, "round {round}");
    }
}

#[tokio::test]
async fn a_lease_that_ran_out_while_nobody_took_it_is_taken_back() {
    let mut redis = RedisServer::start().await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let ttl = Duration::from_millis(200);
    let a = Lease::new("hv:", "node-a", ttl);
    let b = Lease::new("hv:", "node-b", ttl);
    assert_eq!(a.acquire(&mut con).await.unwrap(), Grant::Leader(1));
    // A could not renew for a while (Redis unreachable): the lease ran out
    // but nobody took it, so the same epoch renews it.
    tokio::time::sleep(ttl * 2).await;
    assert!(a.renew(&mut con, 1).await.unwrap());
    assert_eq!(b.acquire(&mut con).await.unwrap(), Grant::Follower(1));
    // Redis restarted empty (no persistence here): A takes it back and the
    // epoch does not go backwards for the next holder.
    redis.stop();
    redis.resume().await;
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    assert!(a.renew(&mut con, 1).await.unwrap());
    assert!(a.release(&mut con, 1).await.unwrap());
    assert_eq!(b.acquire(&mut con).await.unwrap(), Grant::Leader(2));
    // Once another took it, the old epoch never renews.
    assert!(!a.renew(&mut con, 1).await.unwrap());
}
