"""The runner side: case catalogue, scheduling across phones, verdicts, the record."""
