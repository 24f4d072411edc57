"""The pages: one module per page, thin views over model methods and the pure graph/content helpers."""
