-- wrk script: one GraphQL POST per request, the same for every request.
-- Arguments: a bearer token ("-" for none) and the JSON request body.
-- An answer that is not HTTP 200 or that holds "errors" counts as an error.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  errors = 0
  wrk.method = "POST"
  wrk.body = args[2]
  wrk.headers["Content-Type"] = "application/json"
  if args[1] ~= "-" then
    wrk.headers["Authorization"] = "Bearer " .. args[1]
  end
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("errors")
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d rps=%.1f p50_ms=%.2f p99_ms=%.2f errors=%d socket_errors=%d\n",
    summary.requests,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    failed,
    e.connect + e.read + e.write + e.status + e.timeout))
end
