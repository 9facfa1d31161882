"""Audio in, spikes out: ``cochlea`` (the streaming filterbank and spike encoder) and
``source`` (``WavSource`` replay, ``MicrophoneSource`` live capture)."""
