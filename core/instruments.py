"""The General MIDI instruments a melody can be played on, by name.

The names are the General MIDI Level 1 Sound Set (MIDI Manufacturers Association, 1991), programs
0-127 (the standard numbers them 1-128). Percussion is not a program: drums stay on channel 10.
"""

from __future__ import annotations

from core.words import WHOLE_NUMBER, quoted

GM_PROGRAMS: tuple[str, ...] = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion", "Harmonica", "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)", "Electric Guitar (clean)",
    "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
    "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2",
    "Choir Aahs", "Voice Oohs", "Synth Voice", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon", "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)",
    "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)",
    "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)",
    "FX 5 (brightness)", "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause", "Gunshot",
)  # fmt: skip
DEFAULT_PROGRAM = 0  # Acoustic Grand Piano
# A family's word plays its usual instrument, as people say "a piano" for a grand piano; README
# ("Instruments") lists each. Any other part of a name must fit one program: "horn" fits three and is refused.
FAMILY_WORDS = {
    "piano": 0, "organ": 19, "guitar": 24, "bass": 32, "strings": 48, "brass": 61, "sax": 65, "saxophone": 65, "synth": 80,
}  # fmt: skip
# What names the drum kit, which is no program (drums stay on channel 10, beside the melody): refused with one line,
# whether it would fit a pitched program ("drums": Steel Drums) or several ("drum") or none ("percussion").
DRUM_KIT_WORDS = frozenset({
    "drum", "drums", "drum kit", "drumkit", "drum set", "drumset", "drum kits", "percussion", "percussions", "kit",
})  # fmt: skip
PITCHED_PERCUSSION = ("Steel Drums", "Timpani", "Xylophone", "Marimba")
SUGGESTIONS_MAX = 25  # Discord shows at most 25 autocomplete choices


class InstrumentError(ValueError):
    """Not a General MIDI instrument; the message is meant for the user."""


def _folded(text: str) -> str:
    return " ".join(text.lower().replace("-", " ").split())


def parse_instrument(text: str | int) -> int:
    """A General MIDI program 0-127 from its name (any case; 'violin', 'Acoustic Grand Piano'), a family's
    word (FAMILY_WORDS: 'guitar' is Acoustic Guitar (nylon)), a number 0-127, or a part of a name that only
    one program contains. InstrumentError otherwise: any integer outside 0-127 ('-1' too) is said to be one, the drum
    kit (DRUM_KIT_WORDS) is no program a melody plays on, and a part that fits several programs is told their names."""
    if isinstance(text, int) or WHOLE_NUMBER.fullmatch(str(text)):
        number = int(text)
        if not 0 <= number < len(GM_PROGRAMS):
            raise InstrumentError(f"instrument number {number} is not a General MIDI program (0-127)")
        return number
    wanted = _folded(str(text))
    if not wanted:
        raise InstrumentError("name an instrument, such as piano, violin or flute")
    if wanted in FAMILY_WORDS:
        return FAMILY_WORDS[wanted]
    if wanted in DRUM_KIT_WORDS:
        raise InstrumentError(
            f"{quoted(text)}: the drum kit plays beside the melody (on channel 10), and a melody needs a pitched instrument: "
            f"name one, such as {', '.join(PITCHED_PERCUSSION[:-1])} or {PITCHED_PERCUSSION[-1]}"
        )
    for program, name in enumerate(GM_PROGRAMS):
        if _folded(name) == wanted:
            return program
    matches = suggest_instruments(wanted)
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(GM_PROGRAMS[p] for p in matches[:5])
        raise InstrumentError(f"{quoted(text)} could be several instruments ({names}{', ...' if len(matches) > 5 else ''}): name one")
    raise InstrumentError(f"{quoted(text)} is not a General MIDI instrument: try piano, violin, flute, trumpet or a number 0-127")


def suggest_instruments(text: str, limit: int = SUGGESTIONS_MAX) -> list[int]:
    """Programs whose name contains `text` (any case), at most `limit`: a family word's own program first
    (what the word alone plays), then those starting with `text`, then the others."""
    wanted = _folded(text)
    family = [FAMILY_WORDS[wanted]] if wanted in FAMILY_WORDS else []
    starting = [p for p, name in enumerate(GM_PROGRAMS) if _folded(name).startswith(wanted) and p not in family]
    containing = [p for p, name in enumerate(GM_PROGRAMS) if wanted in _folded(name) and p not in family + starting]
    return (family + starting + containing)[:limit]


def instrument_name(program: int) -> str:
    return GM_PROGRAMS[program]
