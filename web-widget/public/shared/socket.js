// @ts-check
// A WebSocket to Haven that reconnects by itself. It follows the protocol's
// rules (docs/protocol.md §5 and §8): after a close whose code says
// "resume", or a connection lost without a close, it reconnects with
// exponential backoff and full jitter and lets the caller greet again
// (with `resume`); after any other code it stops and reports the code.
// It knows nothing about chats: the widget and the console build on it.

import { SUBPROTOCOL, shouldResume } from './protocol.js';

/** Longest wait between attempts, in ms. */
const MAX_BACKOFF = 30000;
/** First wait, in ms; doubles with each failed attempt. */
const BASE_BACKOFF = 500;
/** How often an open socket sends an application `ping`, in ms. */
const PING_EVERY = 20000;
/** A socket that heard nothing for this long is presumed dead, in ms. */
const SILENCE_LIMIT = 50000;

/**
 * @typedef {object} Handlers
 * @property {() => object} greet the first frame to send on each connection
 * @property {(msg: any) => void} message a frame from the server
 * @property {(state: 'connecting' | 'open' | 'reconnecting') => void} [state]
 * @property {(code: number) => void} closed the socket closed for good
 */

export class HavenSocket {
  /**
   * @param {string} path `/ws/seeker` or `/ws/counsellor`
   * @param {Handlers} on
   */
  constructor(path, on) {
    this.url = new URL(path, location.href);
    this.url.protocol = this.url.protocol === 'https:' ? 'wss:' : 'ws:';
    this.on = on;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    this.lastHeard = Date.now();
    this.onOnline = () => {
      if (!this.ws && !this.stopped) this.retryNow();
    };
    // The browser knows the network is gone before TCP does: drop the
    // socket at once and reconnect when it is back.
    this.onOffline = () => this.drop();
    addEventListener('online', this.onOnline);
    addEventListener('offline', this.onOffline);
    this.pinger = setInterval(() => {
      if (!this.open) return;
      if (Date.now() - this.lastHeard > SILENCE_LIMIT) this.drop();
      else this.send({ type: 'ping' });
    }, PING_EVERY);
    this.connect();
  }

  /** Whether a frame sent now goes out. */
  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    this.timer = undefined;
    this.on.state?.(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const ws = new WebSocket(this.url, [SUBPROTOCOL]);
    this.ws = ws;
    ws.onopen = () => {
      this.lastHeard = Date.now();
      ws.send(JSON.stringify(this.on.greet()));
      this.on.state?.('open');
    };
    ws.onmessage = (event) => {
      this.lastHeard = Date.now();
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      // Any frame means the greeting worked: start backoff afresh.
      this.attempt = 0;
      this.on.message(msg);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (shouldResume(event.code)) {
        this.schedule();
      } else {
        this.stop();
        this.on.closed(event.code);
      }
    };
  }

  /** Abandons the current connection and reconnects with backoff. */
  drop() {
    const ws = this.ws;
    if (!ws || this.stopped) return;
    this.ws = null;
    ws.close();
    this.schedule();
  }

  schedule() {
    this.on.state?.('reconnecting');
    const ceiling = Math.min(MAX_BACKOFF, BASE_BACKOFF * 2 ** this.attempt);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), Math.random() * ceiling);
  }

  retryNow() {
    if (this.ws) return;
    clearTimeout(this.timer);
    this.connect();
  }

  /** Sends a frame if connected; returns whether it went out.
   * @param {object} frame */
  send(frame) {
    if (!this.open || !this.ws) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Closes for good, without reconnecting. */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    removeEventListener('online', this.onOnline);
    removeEventListener('offline', this.onOffline);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
  }
}
