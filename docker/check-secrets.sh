#!/bin/sh
# The first service of docker-compose.yml (secrets-check): every other service waits for it to
# exit successfully, so the stack does not start while a secret in .env is empty or still a
# placeholder of .env.example (change-me...). docker-compose.yml passes it every secret the
# stack uses; it checks each variable of its environment whose name says it holds a secret.
# It prints the names of the variables to fix, never their values.
set -eu

bad=""
for name in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' | sort -u); do
  case "$name" in
    *PASSWORD* | *PASSWD* | *SECRET* | *FERNET* | *TOKEN* | *ACCESS_KEY* | *PRIVATE_KEY*) ;;
    *) continue ;;
  esac
  eval "value=\${$name:-}"
  case "$value" in
    "") bad="$bad $name(empty)" ;;
    change-me*) bad="$bad $name(placeholder)" ;;
  esac
done

if [ -n "$bad" ]; then
  echo "secrets-check: refusing to start the stack; these secrets in .env are empty or still a change-me* placeholder:" >&2
  for entry in $bad; do
    echo "  $entry" >&2
  done
  echo "Set each in .env (generate with: openssl rand -hex 24; the Fernet key as .env.example shows), then docker compose up again." >&2
  exit 1
fi
echo "secrets-check: every secret is set"
