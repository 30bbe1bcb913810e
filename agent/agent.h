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
/* Where cfg came from (--config and --set, in order; borrowed, must outlive
 * the agent). On SIGHUP it is loaded again: an invalid configuration is
 * logged with its offending key and counted in
 * sluice_agent_config_reloads_total{result="failure"}, and the agent runs
 * on; a valid one is applied once what is in flight is acknowledged (at most
 * client.timeout): files, pipeline, labels and client settings change, read
 * positions carry over, server.listen and positions.file keep their values
 * (with a warning). Without a source, SIGHUP only counts a failure. */
void sl_agent_set_source(struct sl_agent *a, const char *file, const char *const *sets,
                         size_t nsets);
/* Loads positions, listens, starts discovery. Returns 0 or an SL_E* code with
 * a reason in err. */
int sl_agent_start(struct sl_agent *a, struct sl_buf *err);
/* Graceful stop: stop reading, deliver what is buffered for at most
 * client.timeout, save positions, close every handle (the loop then runs
 * out). Also triggered by SIGINT/SIGTERM; abandons a reload under way. */
void sl_agent_stop(struct sl_agent *a);
/* After the loop has returned. */
void sl_agent_free(struct sl_agent *a);

#endif
