"""`python -m lakehouse.streaming.deploy.kubernetes [job ...]`: print the manifests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakehouse.core.registry import registry
from lakehouse.core.resources import resources
from lakehouse.streaming.kubernetes.manifests import job_manifest, manifest_yaml, render_manifests, render_streaming_job
from lakehouse.streaming.kubernetes.settings import KubernetesSettings

if TYPE_CHECKING:
    pass


def main(argv: list[str] | None = None) -> int:
    """`python -m lakehouse.streaming.kubernetes [job ...]`: print the manifests (connections and
    LAKEHOUSE_K8S_* from the environment)."""
    import sys

    names = list(argv if argv is not None else sys.argv[1:])
    try:
        settings = KubernetesSettings.from_env()
        r = resources()
        if names:
            reg = registry()
            manifests = [
                job_manifest(render_streaming_job(n, paimon=r.paimon, cdc=r.cdc, reg=reg), settings) for n in names
            ]
        else:
            manifests = render_manifests(settings, paimon=r.paimon, cdc=r.cdc)
    except ValueError as exc:  # ConfigError (KubernetesConfigError, SqlFileError, RegistryError), BadRequest: the
        # message says what to fix
        sys.stderr.write(f"{exc}\n")
        return 2
    sys.stdout.write("---\n".join(manifest_yaml(m) for m in manifests))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
