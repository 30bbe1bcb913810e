/* The agent: discovery -> tail -> parse -> ship -> positions, on one libuv
 * loop, plus /metrics and /ready on server.listen.
 *
 * Reading is driven by a uv_idle handle that runs while files have unread
 * data and the shipper has room: each pass reads at most SL_AGENT_READ_CHUNK
 * bytes from each ready file, round-robin, so one busy file cannot starve
 * the others. Positions advance only on acknowledgement (agent/tail).
 *
 * Threading: one loop thread; everything here runs on it. */
#ifndef SL_AGENT_AGENT_H
#define SL_AGENT_AGENT_H

#include <uv.h>

#include "agent/config/config.h"
#include "common/buf.h"

#define SL_AGENT_READ_CHUNK (256 * 1024)

struct sl_agent;

/* cfg is borrowed and must outlive the agent (it is validated already). */
struct sl_agent *sl_agent_new(uv_loop_t *loop, const struct sl_agent_config *cfg);
/* Loads positions, listens, starts discovery. Returns 0 or an SL_E* code with
 * a reason in err. */
int sl_agent_start(struct sl_agent *a, struct sl_buf *err);
/* Graceful stop: stop reading, deliver what is buffered for at most
 * client.timeout, save positions, close every handle (the loop then runs
 * out). Also triggered by SIGINT/SIGTERM. */
void sl_agent_stop(struct sl_agent *a);
/* After the loop has returned. */
void sl_agent_free(struct sl_agent *a);

#endif
