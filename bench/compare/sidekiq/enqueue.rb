# frozen_string_literal: true

# Sidekiq enqueue rate from one client: N x NoopJob.perform_async(i) one at a time
# (--mode one), or Sidekiq::Client.push_bulk in batches of --batch (--mode bulk), as
# bullmq/enqueue.js does with queue.add and addBulk.
#
#   ruby enqueue.rb --n 10000 [--mode one|bulk] [--batch 1000]
require_relative 'lib'
require_relative 'noop_job'

n = Bench.arg('n', 10_000)
i = ARGV.index('--mode')
mode = i ? ARGV[i + 1] : 'one'
abort "enqueue.rb: --mode must be one or bulk, got #{mode.inspect}" unless %w[one bulk].include?(mode)
batch = Bench.arg('batch', 1000)
Sidekiq.configure_client { |c| c.redis = { url: Bench::URL, size: 1 } }

r = Bench.redis
r.flushall
NoopJob.perform_async(-1) # warm up the connection
r.flushall
r.call(%w[config resetstat])
c0 = Bench.self_cpu
r0 = Bench.redis_cpu
t0 = Bench.now
if mode == 'one'
  n.times { |x| NoopJob.perform_async(x) }
else
  (0...n).step(batch) do |from|
    args = (from...[n, from + batch].min).map { |x| [x] }
    Sidekiq::Client.push_bulk('class' => NoopJob, 'args' => args)
  end
end
dt = Bench.now - t0
c1 = Bench.self_cpu
r1 = Bench.redis_cpu
cs = Bench.cmdstats(r)
waiting = r.llen('queue:default')
warn "WARNING waiting=#{waiting} != #{n}" if waiting != n
measure = mode == 'one' ? 'enqueue perform_async' : "enqueue push_bulk(batch=#{batch})"
Bench.record(measure, n / dt, 'jobs/s',
             "sidekiq/enqueue.rb --n #{n} --mode #{mode}#{mode == 'bulk' ? " --batch #{batch}" : ''}",
             n: n, seconds: dt, client_cpu_s: c1 - c0, redis_cpu_s: r1 - r0, waiting: waiting,
             redis_cmds: cs, redis_cmds_per_task: cs.values.sum.to_f / n)
r.flushall
