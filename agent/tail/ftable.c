/* File table: two chained hashes over intrusive nodes. */
#include "agent/tail/ftable.h"

#include <string.h>

#include "common/hash.h"
#include "common/mem.h"

static size_t id_slot(const struct sl_ftable *t, uint64_t dev, uint64_t ino)
{
    uint64_t k[2] = {dev, ino};
    return (size_t)(sl_xxh3(k, sizeof(k)) & (t->cap - 1));
}

static size_t name_slot(const struct sl_ftable *t, const char *name)
{
    return (size_t)(sl_xxh3(name, strlen(name)) & (t->cap - 1));
}

void sl_ftable_init(struct sl_ftable *t)
{
    memset(t, 0, sizeof(*t));
}

void sl_ftable_release(struct sl_ftable *t)
{
    sl_free(t->by_id);
    sl_free(t->by_name);
    sl_ftable_init(t);
}

static void grow(struct sl_ftable *t)
{
    size_t ocap = t->cap;
    t->cap = ocap ? ocap * 2 : 64;
    sl_free(t->by_id);
    sl_free(t->by_name);
    t->by_id = sl_calloc(t->cap, sizeof(*t->by_id));
    t->by_name = sl_calloc(t->cap, sizeof(*t->by_name));
    for (struct sl_ftable_node *n = t->head; n; n = n->next) {
        size_t s = id_slot(t, n->dev, n->ino);
        n->id_next = t->by_id[s];
        t->by_id[s] = n;
        if (n->name) {
            s = name_slot(t, n->name);
            n->name_next = t->by_name[s];
            t->by_name[s] = n;
        }
    }
}

void sl_ftable_add(struct sl_ftable *t, struct sl_ftable_node *node)
{
    node->name = NULL;
    node->prev = NULL;
    node->next = t->head;
    if (t->head)
        t->head->prev = node;
    t->head = node;
    t->n++;
    if (t->n > t->cap) {
        grow(t); /* rehashes every node, this one included */
        return;
    }
    size_t s = id_slot(t, node->dev, node->ino);
    node->id_next = t->by_id[s];
    t->by_id[s] = node;
}

static void id_unlink(struct sl_ftable *t, struct sl_ftable_node *node)
{
    for (struct sl_ftable_node **pp = &t->by_id[id_slot(t, node->dev, node->ino)]; *pp;
         pp = &(*pp)->id_next) {
        if (*pp == node) {
            *pp = node->id_next;
            return;
        }
    }
}

void sl_ftable_remove(struct sl_ftable *t, struct sl_ftable_node *node)
{
    sl_ftable_unname(t, node);
    id_unlink(t, node);
    if (node->prev)
        node->prev->next = node->next;
    else
        t->head = node->next;
    if (node->next)
        node->next->prev = node->prev;
    node->prev = node->next = NULL;
    t->n--;
}

void sl_ftable_rekey(struct sl_ftable *t, struct sl_ftable_node *node, uint64_t dev, uint64_t ino)
{
    id_unlink(t, node);
    node->dev = dev;
    node->ino = ino;
    size_t s = id_slot(t, dev, ino);
    node->id_next = t->by_id[s];
    t->by_id[s] = node;
}

struct sl_ftable_node *sl_ftable_find(const struct sl_ftable *t, uint64_t dev, uint64_t ino)
{
    if (!t->cap)
        return NULL;
    for (struct sl_ftable_node *n = t->by_id[id_slot(t, dev, ino)]; n; n = n->id_next)
        if (n->ino == ino && n->dev == dev)
            return n;
    return NULL;
}

void sl_ftable_name(struct sl_ftable *t, struct sl_ftable_node *node, const char *name)
{
    sl_ftable_unname(t, node);
    node->name = name;
    size_t s = name_slot(t, name);
    node->name_next = t->by_name[s];
    t->by_name[s] = node;
}

void sl_ftable_unname(struct sl_ftable *t, struct sl_ftable_node *node)
{
    if (!node->name)
        return;
    for (struct sl_ftable_node **pp = &t->by_name[name_slot(t, node->name)]; *pp;
         pp = &(*pp)->name_next) {
        if (*pp == node) {
            *pp = node->name_next;
            break;
        }
    }
    node->name = NULL;
}

struct sl_ftable_node *sl_ftable_by_name(const struct sl_ftable *t, const char *name)
{
    if (!t->cap)
        return NULL;
    for (struct sl_ftable_node *n = t->by_name[name_slot(t, name)]; n; n = n->name_next)
        if (!strcmp(n->name, name))
            return n;
    return NULL;
}
