// Benchmark peer: a broadcast relay on Node's ws package, written the way
// ws's README shows broadcasting. Defaults throughout (ws's server leaves
// permessage-deflate off, like every other peer).
'use strict';

const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.env.PORT ?? 5100);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`invalid PORT: ${process.env.PORT}`);
  process.exit(2);
}

const wss = new WebSocketServer({ host: '127.0.0.1', port });

wss.on('connection', (ws) => {
  // Without a listener a client's socket error would crash the process;
  // 'close' follows it and ws forgets the client.
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    if (isBinary) return; // only text is relayed
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: false });
    }
  });
});

wss.on('listening', () => console.error(`listening on 127.0.0.1:${wss.address().port}`));
wss.on('error', (err) => {
  console.error(err.message);
  process.exit(1);
});

// wss.close() leaves open connections alone, so end them first.
function stop() {
  for (const client of wss.clients) client.terminate();
  wss.close(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
