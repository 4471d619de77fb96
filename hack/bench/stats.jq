# hack/bench/run's statistics: turns the timer's samples ("OP RUNTIME ROUND
# NS MAXRSS_KIB" lines, $samples) and GNU time's peak RSS ("RUNTIME KIB"
# lines, $rss) into the benchmark JSON. Times are in ms (3 decimals).
def lines($text): $text | split("\n") | map(select(length > 0) | split(" "));
def ms: . / 1e6 * 1000 | round / 1000;
# The q-quantile by nearest rank over a sorted array.
def quantile($q): .[(((length * $q) | ceil) - 1) | if . < 0 then 0 else . end];
def summary:
  sort as $s
  | {n: ($s | length), min: ($s[0] | ms), median: ($s | quantile(0.5) | ms),
     p90: ($s | quantile(0.9) | ms), max: ($s[-1] | ms),
     mean: (($s | add / length) | ms)};
def median_of: sort | quantile(0.5);

(lines($samples) | map({op: .[0], rt: .[1], ns: (.[3] | tonumber)})) as $all
| ($all | group_by(.op) | map({key: .[0].op,
    value: (group_by(.rt) | map({key: .[0].rt, value: (map(.ns) | summary)}) | from_entries)})
  | from_entries) as $stats
| (lines($rss) | group_by(.[0]) | map({key: .[0][0], value: (map(.[1] | tonumber) | median_of)})
  | from_entries) as $rss_kib
| {
    env: {mode: $mode, rounds: $rounds, kernel: $kernel, cpu: $cpu, cpus: $cpus, os: $os,
          date: $date, skiff_commit: $commit, cgroups: $cgroups,
          versions: {skiff: $skiff_v, runc: $runc_v, crun: $crun_v},
          rss_method: "GNU time %M of `run`, median of the RSS rounds"},
    stats: $stats,
    rss_kib: $rss_kib,
    size_bytes: {skiff: $s_skiff, runc: $s_runc, crun: $s_crun, floor: $s_floor}
  }
| . + ($stats | map_values(map_values(.median)))
| .ratios = {
    "skiff/crun": (["run", "create", "start", "delete", "exec"]
      | map({key: ., value: (($stats[.].skiff.median / $stats[.].crun.median) * 100 | round / 100)})
      | from_entries),
    "skiff/runc": (["run", "create", "start", "delete", "exec"]
      | map({key: ., value: (($stats[.].skiff.median / $stats[.].runc.median) * 100 | round / 100)})
      | from_entries),
    "skiff/floor": (($stats.run.skiff.median / $stats.run.floor.median) * 100 | round / 100),
    "rss skiff/crun": (($rss_kib.skiff / $rss_kib.crun) * 100 | round / 100)
  }
