// The uWebSockets.js peer (npm `uwebsockets`, a repackaging of the
// GitHub-only uWebSockets.js): the pair-relay workload on µWebSockets' C++
// core.
'use strict';
const uWS = require('uwebsockets');
const { listenAddress, parsePath, stopOnSignal } = require('./common');

const { host, port } = listenAddress(9003);
const sockets = new Map();
let listenSocket = null;
uWS.App()
  .ws('/s/:id/:side', {
    compression: uWS.DISABLED,
    maxPayloadLength: 64 * 1024,
    idleTimeout: 120,
    upgrade: (res, req, context) => {
      res.upgrade(
        { path: parsePath(req.getUrl()) },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: (ws) => {
      const { path } = ws.getUserData();
      if (!path) return ws.end(1008, 'bad path');
      sockets.set(path.key, ws);
    },
    message: (ws, message, isBinary) => {
      const peer = sockets.get(ws.getUserData().path.peer);
      if (peer) peer.send(message, isBinary);
    },
    close: (ws) => {
      const { path } = ws.getUserData();
      if (path && sockets.get(path.key) === ws) sockets.delete(path.key);
    },
  })
  .listen(host, port, (token) => {
    if (!token) {
      console.error(`uws peer cannot listen on ${host}:${port}`);
      process.exit(1);
    }
    listenSocket = token;
    console.error(`uws peer listening on ${host}:${port}`);
  });
stopOnSignal(() => listenSocket && uWS.us_listen_socket_close(listenSocket));
