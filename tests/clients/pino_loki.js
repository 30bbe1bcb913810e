// Logs numbered lines through pino-loki (JSON push) to a Loki push endpoint,
// with a structured-metadata field on every line. Exits 0 once the transport
// has sent everything (pino flushes its worker on exit), 1 on a failed push.
//   node pino_loki.js HOST RUN_ID COUNT [TENANT]
'use strict'
const pino = require('pino')

const [host, runId, count, tenant] = process.argv.slice(2)
const transport = pino.transport({
  target: 'pino-loki',
  options: {
    host,
    labels: { app: 'pino-test', run: runId },
    headers: tenant ? { 'X-Scope-OrgID': tenant } : {},
    batching: { interval: 0.2 },
    silenceErrors: false,
    structuredMetaKey: 'meta'
  }
})
const logger = pino({ level: 'debug' }, transport)
for (let i = 0; i < Number(count); i++) {
  logger.info({ meta: { seq: String(i), user: 'u' + (i % 3) } }, `pino line ${i} of ${runId}`)
}
transport.on('error', err => {
  console.error('transport error:', err.message)
  process.exitCode = 1
})
// pino.transport flushes the worker thread before the process exits.
logger.flush(() => transport.end())
