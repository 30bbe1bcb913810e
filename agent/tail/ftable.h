/* The agent's file table: every tailed file by device + inode, and the file
 * currently read under each discovered name (a rotated file keeps its node
 * but leaves the name index). Intrusive: the owner embeds a struct
 * sl_ftable_node in its per-file struct and gets back to it with
 * container_of arithmetic. Lookups are O(1) (hashes that double as they
 * fill), so thousands of files cost nothing per event.
 *
 * Nodes are not copied or freed by the table; path must stay valid while
 * the node is in the name index. Not thread-safe. */
#ifndef SL_AGENT_FTABLE_H
#define SL_AGENT_FTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_ftable_node {
    uint64_t dev;
    uint64_t ino;
    const char *name; /* set while in the name index */
    struct sl_ftable_node *id_next;
    struct sl_ftable_node *name_next;
    struct sl_ftable_node *prev, *next; /* all nodes, newest first */
};

struct sl_ftable {
    struct sl_ftable_node **by_id;
    struct sl_ftable_node **by_name;
    size_t cap; /* power of two, both arrays */
    size_t n;
    struct sl_ftable_node *head;
};

void sl_ftable_init(struct sl_ftable *t);
/* Frees the arrays (not the nodes). */
void sl_ftable_release(struct sl_ftable *t);

/* Adds node under its dev + ino (which must not be in the table). */
void sl_ftable_add(struct sl_ftable *t, struct sl_ftable_node *node);
/* Removes node from both indexes. */
void sl_ftable_remove(struct sl_ftable *t, struct sl_ftable_node *node);
/* Changes node's dev + ino (it follows another file). */
void sl_ftable_rekey(struct sl_ftable *t, struct sl_ftable_node *node, uint64_t dev, uint64_t ino);
struct sl_ftable_node *sl_ftable_find(const struct sl_ftable *t, uint64_t dev, uint64_t ino);

/* Makes node the one read under name (borrowed), replacing none: the caller
 * unnames the previous holder first. */
void sl_ftable_name(struct sl_ftable *t, struct sl_ftable_node *node, const char *name);
/* Takes node out of the name index (no-op if it is not in it). */
void sl_ftable_unname(struct sl_ftable *t, struct sl_ftable_node *node);
struct sl_ftable_node *sl_ftable_by_name(const struct sl_ftable *t, const char *name);

#endif
