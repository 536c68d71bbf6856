/*
 * mysql.c: the MySQL client's C side (module eddy.c.mysql; lua/eddy/mysql.lua
 * makes eddy.mysql of it). A connection object wraps core/mysql.c's
 * connection; each operation suspends its task until the connector is
 * done, then turns the result into Lua values on the task's coroutine.
 * Prepared statements live in the connection, named by small integers
 * (the Lua side keeps the cache); a timed-out or cancelled operation
 * closes its connection, since the connector cannot abandon one.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/mysql.h"
#include "bindings.h"

static const eddyL_class_t conn_class = {"eddy.mysql.conn"};

enum { OP_CONNECT = 1, OP_QUERY, OP_PREPARE, OP_EXECUTE, OP_PING };

/* A connection: freed once its handle is closed and no Lua object points
   here. */
typedef struct myconn_s {
  eddy__mysql_t m;
  eddy__task_t *task;   /* waits on the operation, or NULL */
  int op;               /* OP_*: how to answer the task */
  MYSQL_STMT *stmt;     /* the statement the operation runs, if any */
  int stmt_id;          /* prepare: the slot it will take */
  MYSQL_STMT **stmts;   /* prepared statements by id - 1 (NULL: free) */
  int nstmts;
  eddy__mysql_target_t target;
  char *strings;        /* the target's strings while connecting */
  int connected;        /* connect was called */
  double max_rows;      /* rows a result may have (max_result; 0: any) */
  int lua_held;
  int handle_closed;
} myconn_t;

static myconn_t *conn_of(eddy__mysql_t *m) {
  return (myconn_t *)m; /* m is the first member */
}

static void maybe_free(myconn_t *c) {
  if (c->handle_closed && !c->lua_held) {
    free(c->stmts);
    free(c->strings);
    free(c);
  }
}

/* The connector has let go of the connection (its statements are
   detached from it): free what is ours. */
static void on_closed(eddy__mysql_t *m) {
  myconn_t *c = conn_of(m);
  for (int i = 0; i < c->nstmts; i++)
    if (c->stmts[i] != NULL)
      mysql_stmt_close(c->stmts[i]);
  c->nstmts = 0;
  c->handle_closed = 1;
  maybe_free(c);
}

/* ======================================================================= */
/* Values */

/* NULL in a result or a parameter: the same value as cjson.null. */
#define NULL_VALUE NULL

static void push_null(lua_State *L) {
  lua_pushlightuserdata(L, NULL_VALUE);
}

#define EXACT (9007199254740992.0) /* 2^53: past it a double skips integers */

static void push_int(lua_State *L, long long v, const char *text, size_t len) {
  if (v >= -(long long)EXACT && v <= (long long)EXACT) {
    lua_pushnumber(L, (lua_Number)v);
  } else if (text != NULL) {
    lua_pushlstring(L, text, len);
  } else {
    char buf[32];
    lua_pushstring(L, (snprintf(buf, sizeof buf, "%lld", v), buf));
  }
}

static void push_uint(lua_State *L, unsigned long long v, const char *text,
                      size_t len) {
  if (v <= (unsigned long long)EXACT) {
    lua_pushnumber(L, (lua_Number)v);
  } else if (text != NULL) {
    lua_pushlstring(L, text, len);
  } else {
    char buf[32];
    lua_pushstring(L, (snprintf(buf, sizeof buf, "%llu", v), buf));
  }
}

/* How a column's values become Lua values. */
enum { AS_STRING, AS_INT, AS_FLOAT, AS_DOUBLE, AS_NULL };

static int kind_of(enum enum_field_types t) {
  switch (t) {
  case MYSQL_TYPE_TINY:
  case MYSQL_TYPE_SHORT:
  case MYSQL_TYPE_INT24:
  case MYSQL_TYPE_LONG:
  case MYSQL_TYPE_LONGLONG:
  case MYSQL_TYPE_YEAR:
    return AS_INT;
  case MYSQL_TYPE_FLOAT:
    return AS_FLOAT;
  case MYSQL_TYPE_DOUBLE:
    return AS_DOUBLE;
  case MYSQL_TYPE_NULL:
    return AS_NULL;
  default: /* decimals, text, bytes, dates and times, bits, JSON */
    return AS_STRING;
  }
}

static const char *type_name(const MYSQL_FIELD *f) {
  switch (f->type) {
  case MYSQL_TYPE_TINY: return "tinyint";
  case MYSQL_TYPE_SHORT: return "smallint";
  case MYSQL_TYPE_INT24: return "mediumint";
  case MYSQL_TYPE_LONG: return "int";
  case MYSQL_TYPE_LONGLONG: return "bigint";
  case MYSQL_TYPE_YEAR: return "year";
  case MYSQL_TYPE_FLOAT: return "float";
  case MYSQL_TYPE_DOUBLE: return "double";
  case MYSQL_TYPE_DECIMAL:
  case MYSQL_TYPE_NEWDECIMAL: return "decimal";
  case MYSQL_TYPE_NULL: return "null";
  case MYSQL_TYPE_DATE:
  case MYSQL_TYPE_NEWDATE: return "date";
  case MYSQL_TYPE_TIME: return "time";
  case MYSQL_TYPE_DATETIME: return "datetime";
  case MYSQL_TYPE_TIMESTAMP: return "timestamp";
  case MYSQL_TYPE_BIT: return "bit";
  case MYSQL_TYPE_JSON: return "json";
  case MYSQL_TYPE_ENUM: return "enum";
  case MYSQL_TYPE_SET: return "set";
  case MYSQL_TYPE_GEOMETRY: return "geometry";
  case MYSQL_TYPE_TINY_BLOB:
  case MYSQL_TYPE_MEDIUM_BLOB:
  case MYSQL_TYPE_LONG_BLOB:
  case MYSQL_TYPE_BLOB: return f->charsetnr == 63 ? "blob" : "text";
  case MYSQL_TYPE_VARCHAR:
  case MYSQL_TYPE_VAR_STRING: return f->charsetnr == 63 ? "varbinary" : "varchar";
  case MYSQL_TYPE_STRING: return f->charsetnr == 63 ? "binary" : "char";
  default: return "unknown";
  }
}

/* A value of the text protocol, NUL-terminated by the connector. */
static void push_text(lua_State *L, const MYSQL_FIELD *f, const char *v,
                      size_t len) {
  if (v == NULL) {
    push_null(L);
    return;
  }
  switch (kind_of(f->type)) {
  case AS_INT:
    if (f->flags & UNSIGNED_FLAG)
      push_uint(L, strtoull(v, NULL, 10), v, len);
    else
      push_int(L, strtoll(v, NULL, 10), v, len);
    return;
  case AS_FLOAT:
  case AS_DOUBLE:
    lua_pushnumber(L, strtod(v, NULL));
    return;
  default:
    lua_pushlstring(L, v, len);
  }
}

/* Sets rows.columns (names in order) and rows.types on the table at the
   top, and leaves the names on the stack for the rows' keys. */
static void push_columns(lua_State *L, const MYSQL_FIELD *f, unsigned n) {
  int rows = lua_gettop(L);
  lua_createtable(L, (int)n, 0);
  lua_createtable(L, (int)n, 0);
  for (unsigned i = 0; i < n; i++) {
    lua_pushstring(L, type_name(&f[i]));
    lua_rawseti(L, -2, (int)i + 1);
    lua_pushlstring(L, f[i].name, f[i].name_length);
    lua_rawseti(L, -3, (int)i + 1);
  }
  lua_setfield(L, rows, "types");
  lua_setfield(L, rows, "columns");
  for (unsigned i = 0; i < n; i++)
    lua_pushlstring(L, f[i].name, f[i].name_length);
}

/* A text result set as an array of rows keyed by column name. */
static void push_text_rows(lua_State *L, MYSQL_RES *res) {
  unsigned n = mysql_num_fields(res);
  MYSQL_FIELD *f = mysql_fetch_fields(res);
  my_ulonglong nrows = mysql_num_rows(res);
  luaL_checkstack(L, (int)n + 8, "too many columns");
  lua_createtable(L, nrows > INT32_MAX ? 0 : (int)nrows, 2);
  int rows = lua_gettop(L);
  push_columns(L, f, n);
  MYSQL_ROW row;
  int i = 0;
  while ((row = mysql_fetch_row(res)) != NULL) {
    unsigned long *lens = mysql_fetch_lengths(res);
    lua_createtable(L, 0, (int)n);
    for (unsigned k = 0; k < n; k++) {
      lua_pushvalue(L, rows + 1 + (int)k);
      push_text(L, &f[k], row[k], lens[k]);
      lua_rawset(L, -3);
    }
    lua_rawseti(L, rows, ++i);
  }
  lua_settop(L, rows);
}

/* What a statement without rows did. */
static void push_status(lua_State *L, my_ulonglong affected,
                        my_ulonglong insert_id, unsigned warnings) {
  lua_createtable(L, 0, 3);
  lua_pushnumber(L, affected == (my_ulonglong)-1 ? 0 : (lua_Number)affected);
  lua_setfield(L, -2, "affected_rows");
  lua_pushnumber(L, (lua_Number)insert_id);
  lua_setfield(L, -2, "insert_id");
  lua_pushnumber(L, warnings);
  lua_setfield(L, -2, "warnings");
}

/* One column's fetch space in a statement's result. */
typedef struct cell_s {
  union {
    long long i;
    double d;
    float f;
  } v;
  unsigned long length;
  my_bool is_null;
  my_bool error;
  int kind;
  char *buf;
} cell_t;

static void push_cell(lua_State *L, MYSQL_STMT *st, MYSQL_BIND *b, cell_t *c,
                      unsigned k, int unsigned_) {
  if (c->is_null) {
    push_null(L);
    return;
  }
  switch (c->kind) {
  case AS_INT:
    if (unsigned_)
      push_uint(L, (unsigned long long)c->v.i, NULL, 0);
    else
      push_int(L, c->v.i, NULL, 0);
    return;
  case AS_DOUBLE:
    lua_pushnumber(L, c->v.d);
    return;
  case AS_FLOAT: {
    /* As the text protocol shows it: 0.1, not 0.100000001490116. */
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)c->v.f);
    lua_pushnumber(L, strtod(buf, NULL));
    return;
  }
  case AS_NULL:
    push_null(L);
    return;
  }
  if (!c->error) {
    lua_pushlstring(L, c->buf, c->length);
    return;
  }
  /* Longer than its buffer: fetched again whole. */
  char *whole = malloc(c->length + 1);
  MYSQL_BIND one;
  memset(&one, 0, sizeof one);
  one.buffer_type = MYSQL_TYPE_STRING;
  one.buffer = whole;
  one.buffer_length = c->length + 1;
  if (whole == NULL || mysql_stmt_fetch_column(st, &one, k, 0) != 0) {
    free(whole);
    lua_pushlstring(L, c->buf, b->buffer_length);
    return;
  }
  lua_pushlstring(L, whole, c->length);
  free(whole);
}

/* The statement's stored result set as rows keyed by column name. The
   fetch space lives in a userdata, so an error raised midway leaks
   nothing. */
static void push_stmt_rows(lua_State *L, MYSQL_STMT *st) {
  MYSQL_RES *meta = mysql_stmt_result_metadata(st);
  if (meta == NULL) {
    lua_newtable(L);
    return;
  }
  unsigned n = mysql_num_fields(meta);
  MYSQL_FIELD *f = mysql_fetch_fields(meta);
  size_t space = 0;
  for (unsigned k = 0; k < n; k++)
    if (kind_of(f[k].type) == AS_STRING)
      space += (f[k].max_length < 64 ? 64 : f[k].max_length) + 1;
  luaL_checkstack(L, (int)n + 8, "too many columns");
  size_t head = n * (sizeof(MYSQL_BIND) + sizeof(cell_t));
  char *mem = lua_newuserdata(L, head + space);
  memset(mem, 0, head);
  int scratch = lua_gettop(L);
  MYSQL_BIND *binds = (MYSQL_BIND *)mem;
  cell_t *cells = (cell_t *)(mem + n * sizeof(MYSQL_BIND));
  char *strings = mem + head;
  for (unsigned k = 0; k < n; k++) {
    MYSQL_BIND *b = &binds[k];
    cell_t *c = &cells[k];
    c->kind = kind_of(f[k].type);
    b->length = &c->length;
    b->is_null = &c->is_null;
    b->error = &c->error;
    b->is_unsigned = (f[k].flags & UNSIGNED_FLAG) != 0;
    switch (c->kind) {
    case AS_INT:
      b->buffer_type = MYSQL_TYPE_LONGLONG;
      b->buffer = &c->v.i;
      break;
    case AS_DOUBLE:
      b->buffer_type = MYSQL_TYPE_DOUBLE;
      b->buffer = &c->v.d;
      break;
    case AS_FLOAT:
      b->buffer_type = MYSQL_TYPE_FLOAT;
      b->buffer = &c->v.f;
      break;
    case AS_NULL:
      b->buffer_type = MYSQL_TYPE_NULL;
      break;
    default:
      b->buffer_type = MYSQL_TYPE_STRING;
      b->buffer = c->buf = strings;
      b->buffer_length = (f[k].max_length < 64 ? 64 : f[k].max_length) + 1;
      strings += b->buffer_length;
    }
  }
  my_ulonglong nrows = mysql_stmt_num_rows(st);
  lua_createtable(L, nrows > INT32_MAX ? 0 : (int)nrows, 2);
  int rows = lua_gettop(L);
  push_columns(L, f, n);
  int i = 0;
  if (mysql_stmt_bind_result(st, binds) == 0) {
    int rc;
    while ((rc = mysql_stmt_fetch(st)) == 0 || rc == MYSQL_DATA_TRUNCATED) {
      lua_createtable(L, 0, (int)n);
      for (unsigned k = 0; k < n; k++) {
        lua_pushvalue(L, rows + 1 + (int)k);
        push_cell(L, st, &binds[k], &cells[k], k, binds[k].is_unsigned);
        lua_rawset(L, -3);
      }
      lua_rawseti(L, rows, ++i);
    }
  }
  mysql_free_result(meta);
  lua_settop(L, rows);
  lua_remove(L, scratch);
}

/* ======================================================================= */
/* Answers */

static const char *error_word(myconn_t *c, unsigned err) {
  switch (err) {
  case 0:
    return c->m.broken || c->m.closed ? "closed" : "io error";
  case 1044: /* ER_DBACCESS_DENIED_ERROR */
  case 1045: /* ER_ACCESS_DENIED_ERROR */
  case 1698: /* ER_ACCESS_DENIED_NO_PASSWORD_ERROR */
  case 1862: /* ER_MUST_CHANGE_PASSWORD_LOGIN */
    return "auth failure";
  case 2002: /* CR_CONNECTION_ERROR */
  case 2003: /* CR_CONN_HOST_ERROR */
    return "refused";
  case 2005: /* CR_UNKNOWN_HOST */
    return "dns failure";
  case 1053: /* ER_SERVER_SHUTDOWN */
  case 1927: /* ER_CONNECTION_KILLED */
  case 2006: /* CR_SERVER_GONE_ERROR */
  case 2013: /* CR_SERVER_LOST */
  case 2055: /* CR_SERVER_LOST_EXTENDED */
    return "closed";
  }
  return err < 2000 ? "query error" : "io error";
}

/* nil, err, message, errno, sqlstate: err is short and stable, the rest
   is the server's (or the connector's) own. */
static int push_failure(lua_State *L, myconn_t *c, MYSQL_STMT *st) {
  unsigned err = 0;
  const char *msg = NULL, *state = "HY000";
  if (c->m.not_run) {
    /* never ran: the connector's errno is an earlier operation's */
  } else if (st != NULL && mysql_stmt_errno(st) != 0) {
    err = mysql_stmt_errno(st);
    msg = mysql_stmt_error(st);
    state = mysql_stmt_sqlstate(st);
  } else if (c->m.my != NULL && mysql_errno(c->m.my) != 0) {
    err = mysql_errno(c->m.my);
    msg = mysql_error(c->m.my);
    state = mysql_sqlstate(c->m.my);
  }
  const char *word = error_word(c, err);
  lua_pushnil(L);
  lua_pushstring(L, word);
  lua_pushstring(L, msg != NULL ? msg : word);
  lua_pushinteger(L, (lua_Integer)err);
  lua_pushstring(L, state);
  return 5;
}

/* A query's or execution's result, and whether another follows. */
/* Whether a result of nrows is past the connection's max_result: then it
   is dropped before any Lua table is built, and answered as false. */
static int too_large(myconn_t *c, my_ulonglong nrows) {
  return c->max_rows > 0 && (double)nrows > c->max_rows;
}

static int push_result(lua_State *L, myconn_t *c) {
  MYSQL *my = c->m.my;
  if (c->stmt != NULL) {
    MYSQL_STMT *st = c->stmt;
    if (mysql_stmt_field_count(st) > 0) {
      if (too_large(c, mysql_stmt_num_rows(st))) {
        mysql_stmt_free_result(st);
        lua_pushboolean(L, 0);
      } else {
        push_stmt_rows(L, st);
      }
    } else
      push_status(L, mysql_stmt_affected_rows(st), mysql_stmt_insert_id(st),
                  mysql_warning_count(my));
  } else if (c->m.res != NULL) {
    MYSQL_RES *res = c->m.res;
    c->m.res = NULL;
    if (too_large(c, mysql_num_rows(res)))
      lua_pushboolean(L, 0);
    else
      push_text_rows(L, res);
    mysql_free_result(res);
  } else {
    push_status(L, mysql_affected_rows(my), mysql_insert_id(my),
                mysql_warning_count(my));
  }
  lua_pushboolean(L, mysql_more_results(my));
  return 2;
}

/* A free statement id (1-based), the array grown if need be; 0 when out
   of memory. */
static int free_stmt_id(myconn_t *c) {
  for (int i = 0; i < c->nstmts; i++)
    if (c->stmts[i] == NULL)
      return i + 1;
  MYSQL_STMT **s = realloc(c->stmts, (size_t)(c->nstmts + 1) * sizeof *s);
  if (s == NULL)
    return 0;
  c->stmts = s;
  s[c->nstmts++] = NULL;
  return c->nstmts;
}

/* Pushes what the task's operation answers; returns the count. */
static int push_answer(lua_State *L, myconn_t *c) {
  int op = c->op;
  MYSQL_STMT *st = c->stmt;
  c->op = 0;
  if (op == OP_CONNECT) {
    free(c->strings);
    c->strings = NULL;
  }
  if (c->m.failed) {
    int n = push_failure(L, c, st);
    if (op == OP_PREPARE)
      mysql_stmt_close(st); /* never prepared: nothing to tell the server */
    return n;
  }
  switch (op) {
  case OP_PREPARE:
    c->stmts[c->stmt_id - 1] = st;
    lua_pushinteger(L, c->stmt_id);
    lua_pushinteger(L, (lua_Integer)mysql_stmt_param_count(st));
    return 2;
  case OP_QUERY:
  case OP_EXECUTE:
    return push_result(L, c);
  default:
    lua_pushboolean(L, 1);
    return 1;
  }
}

static void on_done(eddy__mysql_t *m) {
  myconn_t *c = conn_of(m);
  eddy__task_t *t = c->task;
  c->task = NULL;
  if (t == NULL)
    return;
  lua_State *co = eddy__task_wake_begin(t);
  eddy__task_wake_end(t, push_answer(co, c));
}

/* Closes the connection under an operation in progress. A statement
   being prepared goes after the connection, which detaches it (closing it
   first would speak to the server midway). The close may free c (when no
   Lua object holds it any more): c is not touched after it. */
static void give_up(myconn_t *c) {
  MYSQL_STMT *st = c->op == OP_PREPARE ? c->stmt : NULL;
  c->op = 0;
  c->stmt = NULL;
  eddy__mysql_close(&c->m);
  if (st != NULL)
    mysql_stmt_close(st);
}

/* The task stopped waiting (timeout, cancellation, teardown): the
   connector cannot stop midway, so the connection goes. */
static void detach(eddy__task_t *t) {
  myconn_t *c = t->wait_data;
  c->task = NULL;
  give_up(c);
}

static const eddy__wait_ops_t mysql_ops = {"mysql", detach, NULL};

/* ======================================================================= */
/* Starting operations */

static myconn_t *check_conn(lua_State *L) {
  myconn_t *c = *(myconn_t **)eddyL_checkobject(L, 1, &conn_class);
  if (c == NULL)
    luaL_error(L, "the connection was closed");
  return c;
}

/* The connection, ready for an operation of the current task; NULL (with
   nil, "closed" pushed) when it is closed. */
static myconn_t *check_ready(lua_State *L) {
  myconn_t *c = check_conn(L);
  if (c->m.closed)
    return NULL;
  if (eddy__mysql_busy(&c->m) || c->task != NULL)
    luaL_error(L, "the connection is busy in another task");
  return c;
}

/* An operation about to start. */
typedef struct op_s {
  eddy_runtime_t *rt;
  myconn_t *c;
  eddy__task_t *t;
  int64_t ms;
} op_t;

/* What every operation does first, once its own arguments are checked:
   the connection must be free, the task able to wait. Returns -1 when the
   operation may go on (op filled in), else the count of what the caller
   returns: nil, "closed" for a closed connection, or a cancelled task's
   answer. */
static int op_begin(lua_State *L, int timeout_idx, op_t *op) {
  op->rt = eddyL_runtime(L);
  op->c = check_ready(L);
  op->ms = eddyL_opttimeout(L, timeout_idx, -1);
  if (op->c == NULL)
    return eddyL_error(L, EDDY_ECLOSED);
  op->t = eddyL_begin_wait(L, op->rt, &mysql_ops);
  if (op->t == NULL)
    return eddy__task_yield(&op->rt->sched, L);
  return -1;
}

/* Ends the start of an operation (which: OP_*, on statement st) that the
   core went on with (going) or finished at once. The core calls back
   only from the loop, so recording the operation after starting it is in
   time. */
static int op_wait(lua_State *L, op_t *op, int which, MYSQL_STMT *st,
                   int going) {
  myconn_t *c = op->c;
  c->op = which;
  c->stmt = st;
  if (!going)
    return push_answer(L, c);
  c->task = op->t;
  eddy__task_wait(op->t, &mysql_ops, c, op->ms);
  return eddy__task_yield(&op->rt->sched, L);
}

/* new() -> a connection object, not connected yet */
static int conn_new(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  myconn_t **box = eddyL_newobject(L, &conn_class, sizeof *box);
  *box = NULL;
  myconn_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return eddyL_error(L, EDDY_ENOMEM);
  if (eddy__mysql_init(rt, &c->m) != 0) {
    free(c);
    return eddyL_error(L, EDDY_ENOMEM);
  }
  c->m.on_done = on_done;
  c->m.on_closed = on_closed;
  c->lua_held = 1;
  *box = c;
  return 1;
}

/* Copies the target's strings: the connector reads them until the
   handshake is over. */
static int copy_target(lua_State *L, myconn_t *c) {
  static const char *const fields[] = {"ip", "user", "password", "database",
                                       "charset"};
  const char *s[5];
  size_t len[5], total = 0;
  for (int i = 0; i < 5; i++) {
    lua_getfield(L, 2, fields[i]);
    s[i] = lua_tolstring(L, -1, &len[i]);
    lua_pop(L, 1); /* anchored by the options table */
    total += s[i] ? len[i] + 1 : 0;
  }
  if (s[0] == NULL || s[1] == NULL)
    luaL_error(L, "bad options to 'connect' (ip and user expected)");
  char *p = c->strings = malloc(total);
  if (p == NULL)
    return -1;
  const char **out[5] = {&c->target.ip, &c->target.user, &c->target.password,
                         &c->target.database, &c->target.charset};
  for (int i = 0; i < 5; i++) {
    *out[i] = NULL;
    if (s[i] != NULL) {
      memcpy(p, s[i], len[i] + 1);
      *out[i] = p;
      p += len[i] + 1;
    }
  }
  if (c->target.charset == NULL)
    c->target.charset = "utf8mb4";
  return 0;
}

/* connect(conn, {ip, port, user, password, database, charset,
   multi_statements, max_result}, timeout) -> true | nil, err, msg, errno, sqlstate */
static int conn_connect(lua_State *L) {
  luaL_checktype(L, 2, LUA_TTABLE);
  op_t op;
  int n = op_begin(L, 3, &op);
  if (n >= 0)
    return n;
  myconn_t *c = op.c;
  if (c->connected)
    return luaL_error(L, "the connection is connected already");
  if (copy_target(L, c) != 0)
    return eddyL_error(L, EDDY_ENOMEM);
  c->target.port = (unsigned)eddyL_optfield_number(L, 2, "port", 3306);
  c->max_rows = eddyL_optfield_number(L, 2, "max_result", 0);
  c->target.flags = CLIENT_MULTI_RESULTS;
  if (eddyL_optfield_boolean(L, 2, "multi_statements", 1))
    c->target.flags |= CLIENT_MULTI_STATEMENTS;
  /* The connector's own limit backs ours up (whole seconds, at least 1). */
  c->target.connect_timeout_s = op.ms < 0 ? 0 : (unsigned)((op.ms + 999) / 1000);
  c->connected = 1;
  return op_wait(L, &op, OP_CONNECT, NULL,
                 eddy__mysql_connect(&c->m, &c->target));
}

/* query(conn, sql, timeout) -> result, more | nil, err, msg, errno,
   sqlstate. result: rows (an array of tables keyed by column name, with
   .columns and .types), or {affected_rows, insert_id, warnings}. */
static int conn_query(lua_State *L) {
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len);
  op_t op;
  int n = op_begin(L, 3, &op);
  if (n >= 0)
    return n;
  /* sql stays on this coroutine's stack while the task waits. */
  return op_wait(L, &op, OP_QUERY, NULL, eddy__mysql_query(&op.c->m, sql, len));
}

static MYSQL_STMT *check_stmt(lua_State *L, int idx) {
  myconn_t *c = check_conn(L);
  lua_Integer id = luaL_checkinteger(L, idx);
  if (c->m.closed)
    return NULL; /* the operation answers closed */
  if (id < 1 || id > c->nstmts || c->stmts[id - 1] == NULL)
    luaL_argerror(L, idx, "no such statement");
  return c->stmts[id - 1];
}

/* next_result(conn, stmt_id or nil, timeout) -> result, more | nil, err,
   ...: the next result of the last query or execution. */
static int conn_next_result(lua_State *L) {
  MYSQL_STMT *st = lua_isnoneornil(L, 2) ? NULL : check_stmt(L, 2);
  op_t op;
  int n = op_begin(L, 3, &op);
  if (n >= 0)
    return n;
  if (!mysql_more_results(op.c->m.my)) {
    lua_pushnil(L);
    return 1;
  }
  return op_wait(L, &op, st ? OP_EXECUTE : OP_QUERY, st,
                 eddy__mysql_next(&op.c->m, st));
}

/* prepare(conn, sql, timeout) -> id, nparams | nil, err, ... */
static int conn_prepare(lua_State *L) {
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len);
  op_t op;
  int n = op_begin(L, 3, &op);
  if (n >= 0)
    return n;
  myconn_t *c = op.c;
  int id = free_stmt_id(c);
  MYSQL_STMT *st = id ? mysql_stmt_init(c->m.my) : NULL;
  if (st == NULL)
    return eddyL_error(L, EDDY_ENOMEM);
  my_bool on = 1;
  mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &on);
  c->stmt_id = id;
  return op_wait(L, &op, OP_PREPARE, st,
                 eddy__mysql_prepare(&c->m, st, sql, len));
}

/* Space for a parameter's value that is not a Lua string. */
typedef union param_value_u {
  long long i;
  double d;
  signed char b;
} param_value_t;

/* Binds the values at first.. as the statement's parameters. The bind
   structs live in a userdata: the connector builds the request from them
   before the task waits, and copies what it sends. */
static void bind_params(lua_State *L, MYSQL_STMT *st, int first, int n) {
  unsigned want = (unsigned)mysql_stmt_param_count(st);
  if ((unsigned)n != want)
    luaL_error(L, "the statement takes %d parameters, got %d", (int)want, n);
  if (n == 0)
    return;
  char *mem = lua_newuserdata(L, (size_t)n * (sizeof(MYSQL_BIND) +
                                              sizeof(param_value_t)));
  MYSQL_BIND *b = (MYSQL_BIND *)mem;
  param_value_t *v = (param_value_t *)(mem + (size_t)n * sizeof(MYSQL_BIND));
  memset(b, 0, (size_t)n * sizeof *b);
  for (int i = 0; i < n; i++) {
    int idx = first + i;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
      b[i].buffer_type = MYSQL_TYPE_NULL;
      break;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) != NULL_VALUE)
        luaL_argerror(L, idx, "a light userdata other than null");
      b[i].buffer_type = MYSQL_TYPE_NULL;
      break;
    case LUA_TBOOLEAN:
      v[i].b = (signed char)lua_toboolean(L, idx);
      b[i].buffer_type = MYSQL_TYPE_TINY;
      b[i].buffer = &v[i].b;
      break;
    case LUA_TNUMBER: {
      double d = lua_tonumber(L, idx);
      if (d == floor(d) && fabs(d) < 9.2e18) {
        v[i].i = (long long)d;
        b[i].buffer_type = MYSQL_TYPE_LONGLONG;
        b[i].buffer = &v[i].i;
      } else {
        v[i].d = d;
        b[i].buffer_type = MYSQL_TYPE_DOUBLE;
        b[i].buffer = &v[i].d;
      }
      break;
    }
    case LUA_TSTRING: {
      size_t len;
      b[i].buffer = (void *)lua_tolstring(L, idx, &len);
      b[i].buffer_length = len;
      b[i].buffer_type = MYSQL_TYPE_STRING;
      break;
    }
    default:
      luaL_argerror(L, idx, lua_pushfstring(L, "cannot bind a %s",
                                            luaL_typename(L, idx)));
    }
  }
  if (mysql_stmt_bind_param(st, b) != 0)
    luaL_error(L, "cannot bind parameters: %s", mysql_stmt_error(st));
}

/* execute(conn, id, timeout, params...) -> result, more | nil, err, ... */
static int conn_execute(lua_State *L) {
  MYSQL_STMT *st = check_stmt(L, 2);
  int top = lua_gettop(L);
  op_t op;
  int n = op_begin(L, 3, &op);
  if (n >= 0)
    return n;
  bind_params(L, st, 4, top - 3);
  return op_wait(L, &op, OP_EXECUTE, st, eddy__mysql_execute(&op.c->m, st));
}

/* stmt_close(conn, id): the statement goes (the server is told, without
   waiting for an answer). */
static int conn_stmt_close(lua_State *L) {
  myconn_t *c = check_ready(L);
  MYSQL_STMT *st = check_stmt(L, 2);
  if (c == NULL)
    return 0;
  c->stmts[luaL_checkinteger(L, 2) - 1] = NULL;
  mysql_stmt_close(st);
  return 0;
}

/* ping(conn, timeout) -> true | nil, err, ... */
static int conn_ping(lua_State *L) {
  op_t op;
  int n = op_begin(L, 2, &op);
  if (n >= 0)
    return n;
  return op_wait(L, &op, OP_PING, NULL, eddy__mysql_ping(&op.c->m));
}

/* close(conn): closes the connection; a task waiting on it gets nil,
   "closed". */
static int conn_close(lua_State *L) {
  myconn_t *c = check_conn(L);
  if (c->m.closed)
    return 0;
  eddy__task_t *t = c->task;
  if (t != NULL) {
    eddy__sched_t *s = &eddyL_runtime(L)->sched;
    c->task = NULL;
    eddy__sched_hold(s);
    lua_State *co = eddy__task_wake_begin(t);
    eddy__task_wake_end(t, eddyL_error(co, EDDY_ECLOSED));
    eddy__sched_unhold(s);
  }
  give_up(c);
  return 0;
}

static int conn_gc(lua_State *L) {
  myconn_t **box = eddyL_toobject(L, 1);
  myconn_t *c = *box;
  if (c == NULL)
    return 0;
  *box = NULL;
  if (c->task != NULL) {
    /* Only while the Lua state closes: the task's detach, when the
       runtime ends it, closes the connection and frees it. */
    c->lua_held = 0;
    return 0;
  }
  eddy__mysql_close(&c->m); /* held still: on_closed does not free it */
  c->lua_held = 0;
  maybe_free(c);
  return 0;
}

/* closed(conn) -> whether it can no longer be used (closed or lost) */
static int conn_closed(lua_State *L) {
  myconn_t *c = check_conn(L);
  lua_pushboolean(L, c->m.closed || c->m.broken);
  return 1;
}

static int in_transaction(myconn_t *c) {
  return !c->m.closed && (c->m.my->server_status & SERVER_STATUS_IN_TRANS);
}

/* in_transaction(conn) -> whether the server says a transaction is open */
static int conn_in_transaction(lua_State *L) {
  lua_pushboolean(L, in_transaction(check_conn(L)));
  return 1;
}

/* reusable(conn) -> whether it may serve another task: open, not lost,
   no transaction left open */
static int conn_reusable(lua_State *L) {
  myconn_t *c = check_conn(L);
  lua_pushboolean(L, !c->m.closed && !c->m.broken && !in_transaction(c));
  return 1;
}

/* state(conn) -> thread_id, server_version (nothing once closed) */
static int conn_state(lua_State *L) {
  myconn_t *c = check_conn(L);
  if (c->m.closed)
    return 0;
  lua_pushnumber(L, (lua_Number)mysql_thread_id(c->m.my));
  lua_pushstring(L, mysql_get_server_info(c->m.my));
  return 2;
}

/* quote(conn, s) -> s as a string literal, escaped for the connection's
   character set */
static int conn_quote(lua_State *L) {
  myconn_t *c = check_conn(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  if (c->m.closed)
    return eddyL_error(L, EDDY_ECLOSED);
  char *out = malloc(2 * len + 3);
  if (out == NULL)
    return eddyL_error(L, EDDY_ENOMEM);
  out[0] = '\'';
  unsigned long n = mysql_real_escape_string(c->m.my, out + 1, s, len);
  out[n + 1] = '\'';
  lua_pushlstring(L, out, n + 2);
  free(out);
  return 1;
}

static const luaL_Reg conn_meta[] = {
    {"__gc", conn_gc},
    {NULL, NULL},
};

static const luaL_Reg conn_methods[] = {
    {NULL, NULL},
};

static const luaL_Reg mysql_funcs[] = {
    {"new", conn_new},
    {"connect", conn_connect},
    {"query", conn_query},
    {"next_result", conn_next_result},
    {"prepare", conn_prepare},
    {"execute", conn_execute},
    {"stmt_close", conn_stmt_close},
    {"ping", conn_ping},
    {"close", conn_close},
    {"closed", conn_closed},
    {"state", conn_state},
    {"in_transaction", conn_in_transaction},
    {"reusable", conn_reusable},
    {"quote", conn_quote},
    {NULL, NULL},
};

int luaopen_eddy_c_mysql(lua_State *L) {
  eddyL_newclass(L, &conn_class, conn_methods, conn_meta);
  eddyL_newlib(L, mysql_funcs);
  push_null(L);
  lua_setfield(L, -2, "null");
  return 1;
}
