// Starts @20minutes/s3rver (a signature-checking S3 implementation) for the
// integration tests: node s3rver.js --dir DIR --port PORT --bucket NAME
//   [--allow-mismatched-signatures] [--service-endpoint HOST]
// Prints "s3rver listening <port>" once it accepts connections; stops on
// SIGTERM. Credentials: access key S3RVER, secret S3RVER (s3rver's only ones).
'use strict';
const S3rver = require('@20minutes/s3rver');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const server = new S3rver({
  address: '127.0.0.1',
  port: Number(opt('--port', '0')),
  directory: opt('--dir'),
  silent: !args.includes('--verbose'),
  allowMismatchedSignatures: args.includes('--allow-mismatched-signatures'),
  serviceEndpoint: opt('--service-endpoint', 'amazonaws.com'),
  configureBuckets: opt('--bucket') ? [{ name: opt('--bucket') }] : [],
});
server.run().then(({ port }) => {
  console.log(`s3rver listening ${port}`);
});
const stop = () => server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
