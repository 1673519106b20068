# The access-log bucket, in its own file of the same module. Nothing set.
resource "aws_s3_bucket" "access_logs" {
  bucket = "acme-access-logs"
}
