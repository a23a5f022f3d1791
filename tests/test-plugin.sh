#!/bin/sh
# The onellm plugin registers and gst-inspect-1.0 shows its metadata (GST_PLUGIN_PATH_1_0 points at the build).
set -eu
out=$(gst-inspect-1.0 onellm)
echo "$out"
echo "$out" | grep -q "Name *onellm"
echo "$out" | grep -q "License *LGPL"
echo "$out" | grep -q "Version *$1"
echo "$out" | grep -q "Filename .*libgstonellm"
for e in onellmimagetok onellmvideotok onellmaudiotok onellmdepthtok onellmnormaltok onellmpointtok onellmimutok \
         onellmfmritok; do
  echo "$out" | grep -q "^ *$e: OneLLM .* tokenizer" || { echo "$e not registered"; exit 1; }
  gst-inspect-1.0 "$e" | grep -q "Description *Turns " || { echo "$e has no description"; exit 1; }
done
for e in onellmencoder onellmcaption onellmcaptionsink; do
  echo "$out" | grep -q "^ *$e: OneLLM " || { echo "$e not registered"; exit 1; }
  info=$(gst-inspect-1.0 "$e")
  echo "$info" | grep -q "Description *\(Turns\|Answers\) " || { echo "$e has no description"; exit 1; }
  echo "$info" | grep -q "^  model *: OneLLM model file" || { echo "$e has no model property"; exit 1; }
done
gst-inspect-1.0 onellmcaptionsink | grep -q '"caption"' || { echo "onellmcaptionsink has no caption signal"; exit 1; }
