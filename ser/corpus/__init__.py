"""The IEMOCAP corpus: its reader, label sets, audio loading and transcript WER."""
