# frozen_string_literal: true

# Shared helpers of the Sidekiq peer benchmarks: the same JSON lines as the peers' benchlib.py
# and bullmq/lib.js (system, version, measure, value, unit, command, ts, extras), appended to
# RESULTS_FILE, and the CPU of the redis-server whose PID is in REDIS_PID (or the file
# REDIS_PID_FILE), as compare.sh starts it. Redis: 127.0.0.1:REDIS_PORT (default 6391).
require 'fileutils'
require 'json'
require 'redis'
require 'sidekiq'

module Bench
  PORT = Integer(ENV.fetch('REDIS_PORT', '6391'))
  URL = "redis://127.0.0.1:#{PORT}/0"
  RESULTS = ENV.fetch('RESULTS_FILE', File.join(__dir__, 'results', 'raw.jsonl'))
  CLK = 100 # USER_HZ
  # The harness' own commands, left out of the per-task command counts (as the peers do).
  HARNESS = %w[dbsize zcard flushall flushdb config|resetstat info config llen client|setinfo
               blpop rpush].freeze

  module_function

  def redis
    Redis.new(url: URL)
  end

  def proc_cpu(pid)
    stat = File.read("/proc/#{pid}/stat")
    parts = stat[(stat.rindex(')') + 2)..].split(' ')
    (Integer(parts[11]) + Integer(parts[12])).to_f / CLK
  rescue Errno::ENOENT, Errno::ESRCH
    Float::NAN
  end

  def redis_pid
    pid = ENV['REDIS_PID']
    pid = File.read(ENV['REDIS_PID_FILE']).strip if (pid.nil? || pid.empty?) && ENV['REDIS_PID_FILE']
    abort 'lib.rb: set REDIS_PID (or REDIS_PID_FILE) to the redis-server to measure' if pid.nil? || pid.empty?
    Integer(pid)
  end

  def redis_cpu
    proc_cpu(redis_pid)
  end

  def self_cpu
    t = Process.times
    t.utime + t.stime
  end

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  def version
    "sidekiq #{Sidekiq::VERSION} (redis-rb #{Redis::VERSION}, ruby #{RUBY_VERSION})"
  end

  def record(measure, value, unit, command, extra = {})
    row = { system: 'sidekiq', version: version, measure: measure, value: value, unit: unit,
            command: command, ts: Time.now.to_f }.merge(extra)
    FileUtils.mkdir_p(File.dirname(RESULTS))
    File.open(RESULTS, 'a') { |f| f.puts(JSON.generate(row)) }
    puts JSON.generate(row)
  end

  def cmdstats(r)
    r.info('commandstats').each_with_object({}) do |(name, stats), out|
      out[name] = Integer(stats['calls']) unless HARNESS.include?(name)
    end
  end

  def percentile(sorted, q)
    return Float::NAN if sorted.empty?

    k = (sorted.size - 1) * q / 100.0
    lo = k.floor
    hi = [lo + 1, sorted.size - 1].min
    sorted[lo] + (sorted[hi] - sorted[lo]) * (k - lo)
  end

  # --name VALUE from ARGV, as Integer.
  def arg(name, default)
    i = ARGV.index("--#{name}")
    i ? Integer(ARGV[i + 1]) : default
  end

  # Starts `sidekiq` (from PATH) in a process group of its own, requiring noop_job.rb, with
  # `concurrency` threads on the default queue; its output goes to `log`.
  def start_sidekiq(concurrency, log, env = {})
    cmd = ['sidekiq', '-r', File.join(__dir__, 'noop_job.rb'), '-c', concurrency.to_s, '-q', 'default',
           '-t', '2', '-e', 'production']
    Process.spawn({ 'REDIS_URL' => URL }.merge(env), *cmd, pgroup: true, out: log, err: log)
  end

  # TERM to the group we started, then (bounded) KILL.
  def stop_group(pid)
    begin
      Process.kill('TERM', -pid)
    rescue Errno::ESRCH
      return
    end
    deadline = now + 15
    while now < deadline
      return if Process.waitpid(pid, Process::WNOHANG)

      sleep 0.05
    end
    begin
      Process.kill('KILL', -pid)
    rescue Errno::ESRCH
      nil
    end
    Process.waitpid(pid)
  rescue Errno::ECHILD
    nil
  end
end
