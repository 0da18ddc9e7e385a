# frozen_string_literal: true

# The job class of the Sidekiq peer benchmarks, loaded by `sidekiq -r` and by the clients.
#
# NoopJob does nothing unless the drain asked it to count (BENCH_DRAIN_N in the Sidekiq
# process' environment): then the process counts its finished jobs under a mutex and, at the
# N-th, pushes "first last" (CLOCK_REALTIME of the first and the N-th job's end) to
# bench:drain:done, the only Redis command it adds, once per drain. LatencyJob pushes its
# argument to bench:latency:done, the completion signal the latency client waits for with
# BLPOP (Sidekiq keeps no results; this is the counterpart of Celery's result backend and
# BullMQ's QueueEvents). Per-job logging is off (warn level), as in Sidekiq's own load test.
require 'sidekiq'

# redis-rb 4.8 warns on stderr at each SADD Sidekiq 6.4 sends (one per push): that printing
# would be most of what an enqueue measures.
Redis.silence_deprecations = true
Sidekiq.configure_server { |config| config.logger.level = Logger::WARN }

class NoopJob
  include Sidekiq::Worker

  DRAIN_N = Integer(ENV.fetch('BENCH_DRAIN_N', '0'))
  LOCK = Mutex.new
  @done = 0
  @first = nil

  class << self
    # Called after each job when counting; the N-th reports the span to the client.
    def finished
      t = Process.clock_gettime(Process::CLOCK_REALTIME)
      report = LOCK.synchronize do
        @done += 1
        @first ||= t
        @done == DRAIN_N
      end
      Sidekiq.redis { |r| r.rpush('bench:drain:done', "#{@first} #{t}") } if report
    end
  end

  def perform(_x)
    self.class.finished if DRAIN_N.positive?
  end
end

class LatencyJob
  include Sidekiq::Worker

  def perform(x)
    Sidekiq.redis { |r| r.rpush('bench:latency:done', x.to_s) }
  end
end
