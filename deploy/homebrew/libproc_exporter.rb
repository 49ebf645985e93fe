# Homebrew formula for libproc_exporter, built from source with cargo.
#
#   brew install --build-from-source deploy/homebrew/libproc_exporter.rb   # from a checkout
#   brew services start libproc_exporter
#
# For a tap, deploy/release.sh writes a copy with the release tarball's url and sha256 filled
# in (dist/libproc_exporter.rb); the values below are the template it starts from.
class LibprocExporter < Formula
  desc "Prometheus exporter for process-table, per-user and tty counts via __proc_info"
  homepage "https://github.com/libproc-exporter/libproc_exporter"
  url "https://github.com/libproc-exporter/libproc_exporter/archive/refs/tags/v0.1.0.tar.gz"
  sha256 "0000000000000000000000000000000000000000000000000000000000000000"
  license "Apache-2.0"
  head "https://github.com/libproc-exporter/libproc_exporter.git", branch: "main"

  depends_on "rust" => :build

  def install
    system "cargo", "install", *std_cargo_args
  end

  # brew services runs this as a LaunchAgent of the user who starts it (or, with sudo, as a
  # LaunchDaemon). The flags go straight into ProgramArguments: no shell, no .args file to
  # quote, so what is written here is exactly what the exporter receives.
  service do
    run [
      opt_bin/"libproc_exporter",
      "--web.listen-address=:10077",
      "--log.level=info",
      "--log.format=logfmt",
    ]
    keep_alive crashed: true
    working_dir var
    log_path var/"log/libproc_exporter.log"
    error_log_path var/"log/libproc_exporter.log"
  end

  def caveats
    <<~EOS
      The exporter listens on port 10077 on every interface. To restrict it, run it by hand
      or edit the service flags, e.g. --web.listen-address=127.0.0.1:10077.
      It needs no privilege: every count is readable by an ordinary user.
    EOS
  end

  test do
    assert_match "configuration ok",
      shell_output("#{bin}/libproc_exporter --web.listen-address=127.0.0.1:#{free_port} --check-config")

    port = free_port
    pid = spawn bin/"libproc_exporter", "--web.listen-address=127.0.0.1:#{port}"
    begin
      sleep 2
      metrics = shell_output("curl -fsS http://127.0.0.1:#{port}/metrics")
      assert_match(/^libproc_processes_limit \d+/, metrics)
      if OS.mac?
        assert_match(/^libproc_processes\{state="alive"\} \d+/, metrics)
        assert_match(/^libproc_processes_per_user_limit \d+/, metrics)
      end
    ensure
      Process.kill("TERM", pid)
      Process.wait(pid)
    end
  end
end
