# Homebrew formula for libproc_exporter, built from source with cargo. Homebrew installs
# formulae only from a tap (https://docs.brew.sh/How-to-Create-and-Maintain-a-Tap): copy this
# file to Formula/libproc_exporter.rb of a repository named OWNER/homebrew-tap, then install
# it by its full name, which taps the repository and trusts just this formula (Homebrew 6
# refuses formulae from an untrusted tap: https://docs.brew.sh/Tap-Trust):
#
#   brew install --HEAD OWNER/tap/libproc_exporter   # until a release exists: builds main
#   brew install OWNER/tap/libproc_exporter          # once deploy/release.sh filled in url/sha256
#   brew services start OWNER/tap/libproc_exporter
#
# This file has no stable url or sha256 on purpose: there is no release tarball to point at
# yet. deploy/release.sh writes dist/libproc_exporter.rb with both, for the tap, when it
# builds a release.
#
# Flags come from $(brew --prefix)/etc/libproc_exporter.args, one per line, read by a small
# wrapper the service runs: the way homebrew-core's node_exporter formula does it
# (Formula/n/node_exporter.rb), so flags edited there survive `brew upgrade`, which keeps a
# changed file in etc instead of overwriting it.
class LibprocExporter < Formula
  desc "Prometheus exporter for process-table, per-user and tty counts via __proc_info"
  homepage "https://github.com/libproc-exporter/libproc_exporter"
  license "Apache-2.0"
  head "https://github.com/libproc-exporter/libproc_exporter.git", branch: "main"

  depends_on "rust" => :build

  def install
    system "cargo", "install", *std_cargo_args

    touch etc/"libproc_exporter.args"

    (bin/"libproc_exporter_brew_services").write <<~EOS
      #!/bin/bash
      exec #{opt_bin}/libproc_exporter $(<#{etc}/libproc_exporter.args)
    EOS
  end

  def caveats
    <<~EOS
      When run from `brew services`, libproc_exporter is started by
      libproc_exporter_brew_services with the flags in
        #{etc}/libproc_exporter.args
      (one per line, e.g. --web.listen-address=127.0.0.1:10077). Empty: the defaults,
      port 10077 on every interface. It needs no privilege: every count is readable by
      an ordinary user.
    EOS
  end

  service do
    run [opt_bin/"libproc_exporter_brew_services"]
    keep_alive crashed: true
    working_dir var
    log_path var/"log/libproc_exporter.log"
    error_log_path var/"log/libproc_exporter.log"
  end

  test do
    port = free_port
    (testpath/"test.args").write "--web.listen-address=127.0.0.1:#{port}\n--log.level=warn\n"
    assert_match "configuration ok",
      shell_output("#{bin}/libproc_exporter $(cat #{testpath}/test.args) --check-config")

    pid = spawn bin/"libproc_exporter", "--web.listen-address=127.0.0.1:#{port}"
    begin
      metrics = ""
      20.times do
        sleep 0.5
        metrics = shell_output("curl -fsS http://127.0.0.1:#{port}/metrics 2>/dev/null || true")
        break if metrics.include?("libproc_processes")
      end
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
