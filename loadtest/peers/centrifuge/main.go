// The Centrifuge peer: Centrifugo's core library (0.15, from Debian's Go
// packages) serving the pair-relay workload. Each side of session N
// subscribes to its own channel ("sN:a" or "sN:b") and publishes into the
// other's; every publication is answered with a publish reply and pushed to
// the subscriber, as Centrifugo does.
//
// Build offline (see loadtest/bench.sh):
//
//	GO111MODULE=off GOPATH=$PWD/.gopath:/usr/share/gocode go build -o centrifuge-peer .
//
// Run: centrifuge-peer -listen 127.0.0.1:9004 [-redis 127.0.0.1:6379]
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/centrifugal/centrifuge"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9004", "address to listen on")
	redis := flag.String("redis", "", "Redis address for the Redis broker (empty: in-memory broker)")
	flag.Parse()

	cfg := centrifuge.DefaultConfig
	cfg.LogLevel = centrifuge.LogLevelError
	node, err := centrifuge.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if *redis != "" {
		shard, err := centrifuge.NewRedisShard(node, centrifuge.RedisShardConfig{Address: *redis})
		if err != nil {
			log.Fatal(err)
		}
		broker, err := centrifuge.NewRedisBroker(node, centrifuge.RedisBrokerConfig{
			Shards: []*centrifuge.RedisShard{shard},
		})
		if err != nil {
			log.Fatal(err)
		}
		node.SetBroker(broker)
	}

	// Anonymous clients: every connection is allowed.
	node.OnConnecting(func(ctx context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		return centrifuge.ConnectReply{Credentials: &centrifuge.Credentials{UserID: ""}}, nil
	})
	node.OnConnect(func(client *centrifuge.Client) {
		client.OnSubscribe(func(e centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
			cb(centrifuge.SubscribeReply{}, nil)
		})
		// Centrifuge publishes to the channel itself when the reply carries
		// no result.
		client.OnPublish(func(e centrifuge.PublishEvent, cb centrifuge.PublishCallback) {
			cb(centrifuge.PublishReply{}, nil)
		})
	})
	if err := node.Run(); err != nil {
		log.Fatal(err)
	}

	ws := centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{
		ReadBufferSize:     1024,
		UseWriteBufferPool: true,
		CheckOrigin:        func(r *http.Request) bool { return true },
	})
	http.Handle("/connection/websocket", ws)
	server := &http.Server{Addr: *listen}
	go func() {
		log.Printf("centrifuge peer listening on %s (redis %q)", *listen, *redis)
		if err := server.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	_ = server.Close()
	_ = node.Shutdown(context.Background())
}
