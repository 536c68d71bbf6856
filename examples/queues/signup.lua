-- queues/signup.lua: sign-up with the slow work queued. The sign-up
-- handler writes the user, queues an e-mail and an SMS, and answers at
-- once; consumers send them to two stand-in providers (HTTP servers in
-- the same program that count what they accept). The e-mail provider
-- turns each user's first request away with 503, so every e-mail is
-- retried once. The program ends when every user has exactly one e-mail
-- and one SMS, and says so.
--   build/eddy examples/queues/signup.lua
--   QUEUE_BACKEND=sqlite:///tmp/q.db build/eddy examples/queues/signup.lua
-- QUEUE_BACKEND (memory by default) chooses where the queues live.
local eddy = require "eddy"

local USERS = 50
local BACKEND = os.getenv("QUEUE_BACKEND") or "memory"
local RUN = ("%d-%d"):format(os.time(), math.random(1, 1e9))

-- A stand-in provider: counts what it accepts, per user.
local function provider(flaky)
  local got, seen = {}, {}
  local app = eddy.http.server()
  app:post("/send", function(req, res)
    local user = req.query.user
    if flaky and not seen[user] then
      seen[user] = true
      res:status(503)
      return res:send("try later\n")
    end
    got[user] = (got[user] or 0) + 1
    res:send("sent\n")
  end)
  local server = assert(app:listen("127.0.0.1", 0))
  return server, got, ("http://127.0.0.1:%d/send"):format(server:port())
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

eddy.run(function()
  math.randomseed(os.time())
  local mail_server, mails, mail_url = provider(true)
  local sms_server, texts, sms_url = provider(false)
  local opts = { backend = BACKEND, backoff = 0.05 }
  local mail_q = assert(eddy.queue.open("signup-mail-" .. RUN, opts))
  local sms_q = assert(eddy.queue.open("signup-sms-" .. RUN, opts))

  -- The consumers: a provider's refusal is an error, and the message
  -- comes back after the backoff.
  local function sender(url)
    return function(msg)
      local res, err = eddy.http.post(url .. "?user=" .. msg.body.user, "", { timeout = 5 })
      if not res then error("provider: " .. tostring(err)) end
      if res.status ~= 200 then error("provider answered " .. res.status) end
    end
  end
  local quiet = function() end -- the refusals are counted, not logged
  local mailers = eddy.queue.consume(mail_q, { concurrency = 4, on_error = quiet }, sender(mail_url))
  local texters = eddy.queue.consume(sms_q, { concurrency = 4, on_error = quiet }, sender(sms_url))

  -- The sign-up service.
  local users = {}
  local app = eddy.http.server()
  app:post("/signup", function(req, res)
    local user = req.query.user
    users[user] = { since = eddy.now() }
    assert(mail_q:push({ user = user, template = "welcome" }))
    assert(sms_q:push({ user = user, text = "Welcome!" }))
    res:status(201)
    res:send("welcome " .. user .. "\n")
  end)
  local server = assert(app:listen("127.0.0.1", 0))

  local list = {}
  for i = 1, USERS do
    list[i] = { url = ("http://127.0.0.1:%d/signup?user=u%d"):format(server:port(), i), method = "POST", body = "" }
  end
  local t0 = eddy.now()
  local results = eddy.http.fetch_all(list, { concurrency = 10, timeout = 5 })
  local answered = eddy.now() - t0
  for i = 1, USERS do assert(results[i][1] and results[i][1].status == 201, "sign-up failed") end

  local deadline = eddy.now() + 20
  while (count(mails) < USERS or count(texts) < USERS) and eddy.now() < deadline do
    eddy.sleep(0.02)
  end
  mailers:stop(5)
  texters:stop(5)
  server:close()
  mail_server:close()
  sms_server:close()

  local exact = 0
  for user in pairs(users) do
    if mails[user] == 1 and texts[user] == 1 then exact = exact + 1 end
  end
  print(("%d users signed up in %.3f s; %d e-mails (%d retried), %d SMS; %d users got exactly one of each")
    :format(count(users), answered, count(mails), mailers.failed, count(texts), exact))
  if exact ~= USERS then os.exit(1) end
end)
