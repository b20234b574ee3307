#!/usr/bin/env bash
# Makes the media fixtures of wamedia-info's tests with real encoders, and prints the
# values the tests expect, as the reference tools report them.
#
# Run once from anywhere; the outputs are committed (the tests never run this script and
# need none of these tools). Needs Debian's packages:
#   apt-get install -y ffmpeg imagemagick webp opus-tools lame poppler-utils ghostscript \
#     libimage-exiftool-perl
# Versions used for the committed files: ffmpeg 5.1 (libx264, libopus, native aac),
# ImageMagick 6.9, libwebp 1.2 (cwebp, img2webp), opus-tools 0.2 (libopus 1.3),
# LAME 3.100, Ghostscript 10.0, poppler 22 (pdfinfo), exiftool 12, all from Debian 12.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
q() { "$@" >/dev/null 2>&1; }

# photo.jpg: 320x240 baseline JPEG (ImageMagick's built-in "logo:" picture).
q convert logo: -resize 320x240 -strip -quality 75 photo.jpg
# rotated.jpg: 160x120 pixels stored, EXIF orientation 6 (displayed 120x160).
q convert logo: -resize 160x120 -strip -quality 70 "$tmp/r.jpg"
q exiftool -q -Orientation#=6 -o rotated.jpg "$tmp/r.jpg"
# alpha.png: 300x200 RGBA, a red disc on a transparent background.
q convert -size 300x200 xc:none -fill red -draw "circle 150,100 150,30" -strip alpha.png
# sticker.webp: a 512x512 lossy WebP with alpha (what a static sticker is).
q convert -size 512x512 xc:none -fill '#2a9d8f' -draw "circle 256,256 256,40" -strip "$tmp/s.png"
q cwebp -q 50 -alpha_q 50 "$tmp/s.png" -o sticker.webp
# animated.webp: a 3-frame animated 512x512 WebP sticker (img2webp: VP8X, ANIM, ANMF).
for i in 0 1 2; do
  q convert -size 512x512 xc:none -fill '#e76f51' -draw "circle $((156 + i * 100)),256 $((156 + i * 100)),186" -strip "$tmp/f$i.png"
done
q img2webp -loop 0 -lossy -q 40 -d 200 "$tmp/f0.png" "$tmp/f1.png" "$tmp/f2.png" -o animated.webp
# video.mp4: 2.5 s of H.264 176x144 at 25 fps with an AAC track stored FIRST (so the video
# track is the second trak) and moov at the END of the file (ffmpeg's default), so the
# parser has to step over mdat and pick the video track by its handler.
q ffmpeg -y -f lavfi -i testsrc=size=176x144:rate=25 -f lavfi -i sine=frequency=440:sample_rate=16000 \
  -t 2.5 -map 1:a -map 0:v -c:v libx264 -preset veryslow -crf 38 -pix_fmt yuv420p \
  -c:a aac -b:a 24k -ac 1 -map_metadata -1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact video.mp4
# voice.ogg: a 4.2 s mono voice note encoded by opusenc (libopus) at 24 kb/s from a 16 kHz
# signal whose loudness rises and falls, so its 64-bar waveform has a shape.
q ffmpeg -y -f lavfi -i "aevalsrc='0.6*sin(2*PI*180*t)*abs(sin(PI*t/1.4))+0.2*sin(2*PI*900*t)*between(t,1.0,1.6)':s=16000:d=4.2" \
  -c:a pcm_s16le "$tmp/voice.wav"
q opusenc --bitrate 24 --comp 10 --serial 4242 "$tmp/voice.wav" voice.ogg
# audio.mp3: 3.0 s of 44.1 kHz mono at 64 kb/s, LAME (with its Xing/Info header).
q ffmpeg -y -f lavfi -i "sine=frequency=330:sample_rate=44100" -t 3.0 -c:a pcm_s16le "$tmp/a.wav"
q lame --quiet -b 64 -m m "$tmp/a.wav" audio.mp3
# noxing.mp3: 2.0 s, 22.05 kHz, 32 kb/s, written without the Xing/Info frame (lame -t).
q ffmpeg -y -f lavfi -i "sine=frequency=330:sample_rate=22050" -t 2.0 -c:a pcm_s16le "$tmp/b.wav"
q lame --quiet -t -b 32 -m m "$tmp/b.wav" noxing.mp3
# audio.m4a: 2.0 s of AAC-LC in an MP4 (M4A) container.
q ffmpeg -y -f lavfi -i "sine=frequency=550:sample_rate=22050" -t 2.0 -c:a aac -b:a 32k \
  -map_metadata -1 -fflags +bitexact -flags:a +bitexact audio.m4a
# audio.flac: 1.5 s at 8 kHz; audio.wav: 0.75 s, 8 kHz mono 16-bit PCM.
q ffmpeg -y -f lavfi -i "sine=frequency=440:sample_rate=8000" -t 1.5 -c:a flac -map_metadata -1 -fflags +bitexact audio.flac
q ffmpeg -y -f lavfi -i "sine=frequency=440:sample_rate=8000" -t 0.75 -c:a pcm_s16le -map_metadata -1 -fflags +bitexact audio.wav
# doc.pdf: three pages from PostScript through Ghostscript's pdfwrite.
cat > "$tmp/doc.ps" <<'PS'
%!PS
/Helvetica findfont 24 scalefont setfont
1 1 3 { 72 720 moveto (Page ) show 3 string cvs show showpage } for
PS
q gs -q -dNOPAUSE -dBATCH -dSAFER -sDEVICE=pdfwrite -sOutputFile=doc.pdf "$tmp/doc.ps"

echo "== what the reference tools say (the tests' expected values)"
for f in photo.jpg rotated.jpg alpha.png sticker.webp animated.webp; do
  identify -format "$f: %m %wx%h orientation=%[orientation] frames=%n\n" "$f" | head -n 1
done
webpmux -info animated.webp | head -n 3
ffprobe -v error -show_entries format=duration:stream=index,codec_type,codec_name,width,height -of compact video.mp4
for f in voice.ogg audio.mp3 noxing.mp3 audio.m4a audio.flac audio.wav; do
  printf '%s: ' "$f"; ffprobe -v error -show_entries format=duration:stream=codec_name,sample_rate -of compact=nk=0 "$f" | tr '\n' ' '; echo
done
opusinfo voice.ogg | grep -E 'Pre-skip|Playback length' || true
pdfinfo doc.pdf | grep -E '^Pages'
# The voice note's 64-bar waveform by the published rule (Baileys' getAudioWaveform:
# channel 0, 64 blocks of floor(n/64) samples, mean |x|, divided by the largest mean,
# floor(100 v)), computed here from ffmpeg's decoding of the file at 48 kHz.
ffmpeg -v error -i voice.ogg -f f32le -ac 1 -ar 48000 - | python3 -c '
import struct, sys
d = sys.stdin.buffer.read(); x = struct.unpack("<%df" % (len(d) // 4), d)
b = len(x) // 64; m = [sum(abs(v) for v in x[i * b:(i + 1) * b]) / b for i in range(64)]
print("decoded samples:", len(x)); print("waveform:", [int(100 * v / max(m)) for v in m])'
ls -l photo.jpg rotated.jpg alpha.png sticker.webp animated.webp video.mp4 voice.ogg audio.mp3 noxing.mp3 audio.m4a audio.flac audio.wav doc.pdf | awk '{ s += $5; print $5, $9 } END { print s, "bytes in all" }'
