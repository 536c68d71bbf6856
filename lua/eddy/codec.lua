-- eddy.codec: the one codec for values that cross threads and processes.
-- encode(...) -> bytes (or nil, err for a function, userdata, cdata, a
-- table that contains itself, or nesting too deep); decode(bytes) ->
-- the values again (raises on damaged bytes). See core/codec.h.
require "eddy" -- sets up the runtime when this module is loaded first
return require "eddy.c.codec"
