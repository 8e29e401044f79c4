// Starts local-aws-sqs (an npm SQS emulator speaking the JSON and query
// protocols) on 127.0.0.1 at a free port and prints "listening <port>".
// Usage: node server.js <path to the local-aws-sqs package>
"use strict";
const http = require("http");
const { createRequestHandler } = require(process.argv[2]);

const server = http.createServer();
server.listen(0, "127.0.0.1", () => {
  const port = server.address().port;
  const { requestHandler } = createRequestHandler({
    port,
    hostname: "127.0.0.1",
    emulateQueueCreationLifecycle: false,
    validateDlqDestination: false,
  });
  server.on("request", requestHandler);
  process.stdout.write("listening " + port + "\n");
});
// Exit when the parent (the test) closes stdin or goes away.
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
