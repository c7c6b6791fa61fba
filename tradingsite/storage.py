"""Static files in production: WhiteNoise's compressed, hashed storage."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's storage, without rewriting JavaScript's ``sourceMappingURL`` comments: the
    vendored Chart.js names a source map it does not ship, and Django's manifest storage
    refuses to collect a file whose reference it cannot find. CSS is rewritten as usual."""

    patterns = tuple(
        (glob, rules) for glob, rules in CompressedManifestStaticFilesStorage.patterns
        if glob != "*.js"
    )  # fmt: skip
