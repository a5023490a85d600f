"""Ground-truth engines that implement the World protocol in-process."""
