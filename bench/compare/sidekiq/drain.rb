# frozen_string_literal: true

# Sidekiq drain rate: N NoopJobs queued with push_bulk (not timed), then one `sidekiq -c C`
# process. Rate = (N-1)/(t_last - t_first job end), the N-th job reporting both times (see
# noop_job.rb), as bullmq/drain.js measures first to last completion. Redis CPU and commands
# are taken over the whole drain, from before the process starts.
#
#   ruby drain.rb --n 10000 [--concurrency 50]
require_relative 'lib'
require_relative 'noop_job'

n = Bench.arg('n', 10_000)
conc = Bench.arg('concurrency', 50)
abort 'drain.rb: --n must be at least 2' if n < 2
Sidekiq.configure_client { |c| c.redis = { url: Bench::URL, size: 1 } }
r = Bench.redis
r.flushall
(0...n).step(1000) do |from|
  Sidekiq::Client.push_bulk('class' => NoopJob, 'args' => (from...[n, from + 1000].min).map { |x| [x] })
end
abort "drain.rb: enqueue failed (#{r.llen('queue:default')} queued)" if r.llen('queue:default') != n
log = File.join(ENV.fetch('LOG_DIR', File.join(__dir__, 'logs')), "sidekiq_drain_c#{conc}.log")
FileUtils.mkdir_p(File.dirname(log))
r.call(%w[config resetstat])
r0 = Bench.redis_cpu
t_start = Process.clock_gettime(Process::CLOCK_REALTIME)
pid = Bench.start_sidekiq(conc, log, 'BENCH_DRAIN_N' => n.to_s)
begin
  got = r.blpop('bench:drain:done', timeout: 240)
  abort "drain.rb: timeout, #{r.llen('queue:default')} still queued (see #{log})" unless got
  r1 = Bench.redis_cpu
  worker_cpu = Bench.proc_cpu(pid)
  first, last = got[1].split.map(&:to_f)
  cs = Bench.cmdstats(r)
  steady = last - first
  Bench.record("drain sidekiq -c #{conc}", (n - 1) / steady, 'jobs/s',
               "sidekiq/drain.rb --n #{n} --concurrency #{conc}",
               n: n, seconds_steady: steady, seconds_incl_startup: last - t_start,
               worker_cpu_s: worker_cpu, redis_cpu_s: r1 - r0, redis_cmds: cs,
               redis_cmds_per_task: cs.values.sum.to_f / n, left_queued: r.llen('queue:default'))
ensure
  Bench.stop_group(pid)
  r.flushall
end
