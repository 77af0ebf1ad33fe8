-- wrk script for `make bench`: one request shape, given as `key=value` arguments after `--`:
--   method=POST  path=/api/v1/orders/{id}  ids=FILE (one id a line; {id} is drawn at random)
--   token=JWT (Authorization: Bearer)  body=JSON ({id} replaced too)
--   idempotency=PREFIX (a unique Idempotency-Key per request: PREFIX-thread-count)
-- Every response's status is counted; done() prints one line "BENCH-JSON {...}".

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end

local function parse(args)
  local opts = {}
  for _, arg in ipairs(args) do
    local key, value = arg:match("^([%w_]+)=(.*)$")
    if key then opts[key] = value end
  end
  return opts
end

local function read_ids(path)
  local ids = {}
  for line in io.lines(path) do
    if #line > 0 then ids[#ids + 1] = line end
  end
  return ids
end

function init(args)
  opts = parse(args)
  ids = opts.ids and read_ids(opts.ids) or { "" }
  headers = {}
  if opts.token then headers["Authorization"] = "Bearer " .. opts.token end
  if opts.body then headers["Content-Type"] = "application/json" end
  math.randomseed(os.time() * 1000 + thread_no)
  sent = 0
  statuses = {}
end

function request()
  local id = ids[math.random(#ids)]
  local path = (opts.path:gsub("{id}", id))
  local body = nil
  if opts.body then body = (opts.body:gsub("{id}", id)) end
  if opts.idempotency then
    sent = sent + 1
    headers["Idempotency-Key"] = string.format("%s-%d-%d", opts.idempotency, thread_no, sent)
  end
  return wrk.format(opts.method or "GET", path, headers, body)
end

function response(status, _headers, _body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, _requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses") or {}) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    parts[#parts + 1] = string.format('"%s": %d', status, n)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d}, "latency_us": {"p50": %d, "p90": %d, '
      .. '"p99": %d, "max": %d, "mean": %.1f}, "statuses": {%s}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, table.concat(parts, ", ")))
end
