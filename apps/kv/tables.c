/*
 * Every group of demi-kv's commands, as kv_server_init builds its name
 * table and COMMAND lists them. A file implementing a group of commands
 * (t_list.c, ...) adds one line here.
 */
#include "cmd_int.h"

const struct kv_cmd_table kv_cmd_tables[] = {
    {kv_core_cmds, &kv_core_ncmds},
    {kv_hash_cmds, &kv_hash_ncmds},
    {kv_zset_cmds, &kv_zset_ncmds},
    {kv_server_cmds, &kv_server_ncmds},
    {kv_keys_cmds, &kv_keys_ncmds},
    {kv_list_cmds, &kv_list_ncmds},
    {kv_set_cmds, &kv_set_ncmds},
};
const size_t kv_ncmd_tables = sizeof(kv_cmd_tables) / sizeof(kv_cmd_tables[0]);
