# Helpers the benchmark scripts share (sourced, not run).

# A 60 s, 44.1 kHz stereo, 128 kbit/s CBR MP3 at $1: pink noise under a
# tone, music-like enough that encoders do real work.
bench_source_mp3() {
  ffmpeg -hide_banner -nostdin -v error -y \
    -f lavfi -i "anoisesrc=color=pink:sample_rate=44100:amplitude=0.3:duration=60" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=60" \
    -filter_complex "[0][1]amix=inputs=2,aformat=channel_layouts=stereo" \
    -c:a libmp3lame -b:a 128k -write_xing 0 -id3v2_version 0 "$1"
}

# Start Floe ($1: binary) on config $2, logging into directory $3; sets
# FLOE_PID and FLOE_ADDR (host:port it listens on), or exits.
start_floe() {
  "$1" --config "$2" >"$3/server.out" 2>"$3/server.err" &
  FLOE_PID=$!
  FLOE_ADDR=""
  for _ in $(seq 1 100); do
    FLOE_ADDR=$(sed -n 's/^floe: listening on http:\/\///p' "$3/server.out" 2>/dev/null | head -n1)
    [ -n "$FLOE_ADDR" ] && break
    sleep 0.1
  done
  if [ -z "$FLOE_ADDR" ]; then
    echo "floe did not start:" >&2
    cat "$3/server.err" >&2
    exit 1
  fi
}
