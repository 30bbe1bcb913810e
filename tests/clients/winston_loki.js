// Logs numbered lines through winston-loki to a Loki push endpoint, as
// protobuf + snappy (json: false; winston-loki falls back to JSON only when
// its snappy module cannot load, which this script refuses). Exits 0 once the
// transport has flushed every line, 1 if a push failed.
//   node winston_loki.js HOST RUN_ID COUNT [TENANT]
'use strict'
const winston = require('winston')
const LokiTransport = require('winston-loki')

const [host, runId, count, tenant] = process.argv.slice(2)
require('snappy') // fail loudly instead of silently sending JSON

let failed = false
const transport = new LokiTransport({
  host,
  json: false,
  labels: { app: 'winston-test', run: runId },
  headers: tenant ? { 'X-Scope-OrgID': tenant } : {},
  batching: true,
  interval: 0.2,
  gracefulShutdown: false,
  timeout: 10000,
  onConnectionError: err => {
    failed = true
    console.error('push failed:', err.message)
  }
})
if (transport.batcher.options.json || transport.batcher.contentType !== 'application/x-protobuf') {
  console.error('winston-loki is not in protobuf mode')
  process.exit(2)
}
const logger = winston.createLogger({ level: 'debug', transports: [transport] })
const main = async () => {
  for (let i = 0; i < Number(count); i++) {
    logger.log(i % 2 ? 'warn' : 'info', `winston line ${i} of ${runId}`)
  }
  // Let winston hand the entries to the transport, then wait for the pushes.
  await new Promise(resolve => setImmediate(resolve))
  await transport.flush()
  process.exit(failed ? 1 : 0)
}
main()
