"""Publishing an AssetSet to a target: a local directory (``local``) or S3 (``s3``)."""
