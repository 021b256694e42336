-- wrk script: GET /me with a bearer token taken round-robin from the file
-- named by TOKENS_FILE (one token per line). Each wrk thread starts at a
-- different offset. Non-200 answers are counted and reported at the end.
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do
  if #line > 0 then tokens[#tokens + 1] = line end
end
local path = os.getenv("WRK_PATH") or "/me"
local threads = {}
local i = 0
local bad = 0

function setup(thread)
  thread:set("offset", #threads * 97)
  table.insert(threads, thread)
end

function init(args)
  i = offset or 0
end

function request()
  i = i % #tokens + 1
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. tokens[i] })
end

function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get("bad") or 0) end
  io.write(string.format("non200 %d\n", total))
end
