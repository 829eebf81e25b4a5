// The socket.io peer: one room per session over the WebSocket transport;
// `m` events go to the rest of the room. With --redis URL it uses the
// official Redis adapter, as a multi-node socket.io deployment would.
'use strict';
const http = require('http');
const { Server } = require('socket.io');
const { listenAddress, option, stopOnSignal } = require('./common');

async function main() {
  const { host, port } = listenAddress(9005);
  const httpServer = http.createServer();
  const io = new Server(httpServer, { transports: ['websocket'], perMessageDeflate: false });
  const redisUrl = option('--redis');
  if (redisUrl) {
    const { createClient } = require('redis');
    const { createAdapter } = require('@socket.io/redis-adapter');
    const pub = createClient({ url: redisUrl });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }
  io.on('connection', (socket) => {
    let room = null;
    socket.on('join', (name) => {
      room = String(name);
      socket.join(room);
      socket.emit('joined');
    });
    socket.on('m', (text) => {
      if (room !== null) socket.to(room).emit('m', text);
    });
  });
  httpServer.listen(port, host, () =>
    console.error(`socket.io peer listening on ${host}:${port}${redisUrl ? ' (redis adapter)' : ''}`));
  stopOnSignal(() => io.close());
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
