-- wrk script for bench/receive.py: distinct pre-signed Plain webhooks, one per request.
-- Args: <file of "signature<TAB>body" lines> <number of wrk threads>. Each thread takes
-- every n-th line, so no two requests of a run carry the same event unless it wraps.
local threads = {}
local count = 0

function setup(thread)
  thread:set("tid", count)
  count = count + 1
  table.insert(threads, thread)
end

local reqs = {}
local next_req = 0
wrapped = 0
non200 = 0

function init(args)
  local stride = tonumber(args[2])
  local i = 0
  for line in io.lines(args[1]) do
    if i % stride == tid then
      local tab = line:find("\t", 1, true)
      reqs[#reqs + 1] = wrk.format("POST", "/webhooks/plain", {
        ["Content-Type"] = "application/json",
        ["Plain-Request-Signature"] = line:sub(1, tab - 1),
      }, line:sub(tab + 1))
    end
    i = i + 1
  end
end

function request()
  next_req = next_req + 1
  if next_req > #reqs then
    next_req = 1
    wrapped = wrapped + 1
  end
  return reqs[next_req]
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  end
end

function done(summary, latency, requests)
  local wrapped_total, bad = 0, 0
  for _, thread in ipairs(threads) do
    wrapped_total = wrapped_total + thread:get("wrapped")
    bad = bad + thread:get("non200")
  end
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %.3f, "non200": %d, "socket_errors": %d, "wrapped": %d,'
      .. ' "p50_ms": %.2f, "p99_ms": %.2f}\n',
    summary.requests, summary.duration / 1e6, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    wrapped_total, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
