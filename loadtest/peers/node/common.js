// Shared by the Node peers: the listen address from --listen HOST:PORT, the
// pair-relay path /s/<id>/<a|b>, and a clean stop on SIGTERM or SIGINT.
'use strict';

function listenAddress(defaultPort) {
  const i = process.argv.indexOf('--listen');
  const value = i >= 0 ? process.argv[i + 1] : `127.0.0.1:${defaultPort}`;
  const at = value.lastIndexOf(':');
  return { host: value.slice(0, at), port: Number(value.slice(at + 1)) };
}

function option(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

// "/s/42/a" -> { key: "42/a", peer: "42/b" }; anything else -> null.
function parsePath(url) {
  const m = /^\/s\/([^/?]+)\/([ab])(?:\?.*)?$/.exec(url || '');
  if (!m) return null;
  return { key: `${m[1]}/${m[2]}`, peer: `${m[1]}/${m[2] === 'a' ? 'b' : 'a'}` };
}

function stopOnSignal(stop) {
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { stop(); process.exit(0); });
}

module.exports = { listenAddress, option, parsePath, stopOnSignal };
