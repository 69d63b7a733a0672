"""What TensorBoard shows: the summaries, the HParams tab, the Projector, and the server behind its
password."""
