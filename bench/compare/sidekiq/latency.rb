# frozen_string_literal: true

# Sidekiq enqueue-to-done latency: an idle `sidekiq -c C` process; push one LatencyJob at a
# time and wait (BLPOP) for the job's completion signal (see noop_job.rb), as
# bullmq/latency.js waits on QueueEvents and Celery on its result. --warmup jobs first,
# not counted; bounded to 120 s.
#
#   ruby latency.rb --n 500 [--concurrency 50] [--warmup 20]
require_relative 'lib'
require_relative 'noop_job'

n = Bench.arg('n', 500)
conc = Bench.arg('concurrency', 50)
warm = Bench.arg('warmup', 20)
Sidekiq.configure_client { |c| c.redis = { url: Bench::URL, size: 1 } }
r = Bench.redis
r.flushall
log = File.join(ENV.fetch('LOG_DIR', File.join(__dir__, 'logs')), "sidekiq_latency_c#{conc}.log")
FileUtils.mkdir_p(File.dirname(log))
pid = Bench.start_sidekiq(conc, log)
lat = []
begin
  LatencyJob.perform_async(-1) # wait until the worker is up, then let it go idle
  abort "latency.rb: the worker did not start (see #{log})" unless r.blpop('bench:latency:done', timeout: 60)
  sleep 1
  t_all = Bench.now
  (warm + n).times do |i|
    t0 = Bench.now
    LatencyJob.perform_async(i)
    got = r.blpop('bench:latency:done', timeout: 10)
    ms = (Bench.now - t0) * 1000
    abort "latency.rb: bad completion #{got.inspect} for #{i}" unless got && got[1] == i.to_s
    lat << ms if i >= warm
    break if Bench.now - t_all > 120
  end
ensure
  Bench.stop_group(pid)
end
lat.sort!
cmd = "sidekiq/latency.rb --n #{n} --concurrency #{conc}"
Bench.record('e2e latency p50 (BLPOP)', Bench.percentile(lat, 50), 'ms', cmd,
             n: lat.size, p99: Bench.percentile(lat, 99), mean: lat.sum / lat.size, min: lat.first, max: lat.last)
Bench.record('e2e latency p99 (BLPOP)', Bench.percentile(lat, 99), 'ms', cmd, n: lat.size)
r.flushall
