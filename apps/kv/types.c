/*
 * The collection types built into demi-kv: each t_*.c file defines its
 * ops and adds them here.
 */
#include "store.h"

#include <stddef.h>

extern const struct kv_type_ops kv_list_ops;
extern const struct kv_type_ops kv_set_ops;
extern const struct kv_type_ops kv_hash_ops;
extern const struct kv_type_ops kv_zset_ops;

const struct kv_type_ops *const kv_types[KV_NTYPES] = {
    [KV_STRING] = NULL,
    [KV_LIST] = &kv_list_ops,
    [KV_SET] = &kv_set_ops,
    [KV_HASH] = &kv_hash_ops,
    [KV_ZSET] = &kv_zset_ops,
};
