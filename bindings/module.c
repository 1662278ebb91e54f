/* module.c: the Lua C module acoro.core (lib/lua/5.1/acoro/core.so) holds
 * no code of its own: it links libacoro, where require finds
 * luaopen_acoro_core, so that the engine is one copy per process however
 * it was loaded. A translation unit must declare something. */
typedef int acoro_module_t;
