// The Node `ws` peer: the pair-relay workload on the pure-JavaScript `ws`
// library. Each text frame from /s/<id>/a goes to /s/<id>/b and back.
'use strict';
const { WebSocketServer } = require('ws');
const { listenAddress, parsePath, stopOnSignal } = require('./common');

const { host, port } = listenAddress(9002);
const sockets = new Map();
const wss = new WebSocketServer({ host, port, perMessageDeflate: false });
wss.on('connection', (ws, req) => {
  const path = parsePath(req.url);
  if (!path) return ws.close(1008, 'bad path');
  sockets.set(path.key, ws);
  ws.on('message', (data, isBinary) => {
    const peer = sockets.get(path.peer);
    if (peer) peer.send(data, { binary: isBinary });
  });
  ws.on('close', () => {
    if (sockets.get(path.key) === ws) sockets.delete(path.key);
  });
});
wss.on('listening', () => console.error(`ws peer listening on ${host}:${port}`));
stopOnSignal(() => wss.close());
