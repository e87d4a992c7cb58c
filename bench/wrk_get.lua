-- wrk script: GET of one of 10,000 preloaded keys (bench/http.sh loads them).
request = function()
  return wrk.format("GET", "/kv/pre" .. math.random(0, 9999) .. (wrk.consistency or ""))
end
