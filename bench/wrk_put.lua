-- wrk script: PUT of a 100-byte value under a fresh random key per request.
local value = string.rep("v", 100)
request = function()
  return wrk.format("PUT", "/kv/k" .. math.random(1, 2000000000),
                    {["Content-Type"] = "application/octet-stream"}, value)
end
