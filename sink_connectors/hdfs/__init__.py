"""The HDFS sink (``hdfswriter``): text or Avro files over WebHDFS, in-progress files renamed
at each checkpoint."""
