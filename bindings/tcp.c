/* placeholder, replaced below */
#include "bindings.h"
int luaopen_eddy_c_tcp(lua_State *L) { lua_newtable(L); return 1; }
