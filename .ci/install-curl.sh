#!/usr/bin/env bash
# Install curl from Debian's packages when it is missing. The fake server's
# interoperability test drives it as an IMAP client nobody on this project wrote.
set -euo pipefail

if command -v curl >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-curl: curl is missing and apt-get is not available; install curl by hand" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
echo "installing curl"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends curl ca-certificates >/dev/null
curl --version | head -n 1
