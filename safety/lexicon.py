"""Word lists per language and category for the rule layer, written as regex fragments.

Text is matched after `normalize()` (lower case, accents removed, ß -> ss), so the lists are
written without accents. Each fragment is matched as whole words: `(?<!\\w)fragment(?!\\w)`,
which is what keeps "grape" and "Scunthorpe" clear of the short words inside them. Inflections
are spelled out in each fragment rather than matched with a catch-all `\\w*`, for the same reason
("ass" must not catch "assistant", "viol" must not catch "violon").
"""

from __future__ import annotations

# Every category the rules know, in the order a sentence is reported when several match
# (the most serious first).
CATEGORIES = (
    "self_harm", "sexual", "hate", "gore", "dangerous", "profanity", "personal_info",
    "violence", "rude", "peril",
)

LEXICON: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "self_harm": (
            r"(kill(ing)?|hurt(ing)?|cut(ting)?|harm(ing)?) (my|your) ?sel(f|ves)", r"suicid(e|es|al)", r"self[- ]?harm(ing)?",
            r"(want to|wanna|going to|gonna) die", r"wish (i|he|she|they) (was|were) dead", r"(kill|killed|hang|hanged|drown|drowned|stab|stabbed|shoot|shot)(s|ing)? (himself|herself|themselves)", r"(cut|cuts|cutting|slit|slits|slashed|slash) (his|her|their|my|your) wrists?", r"end (my|your) li(fe|ves)", r"don'?t want to (live|be alive)",
        ),
        "sexual": (
            r"sex(y|ual|ually)?", r"porn(o|ography|ographic)?", r"rap(e|ed|es|ing|ist|ists)",
            r"naked (pictures?|photos?|selfies?)", r"nudes", r"horny", r"orgasms?", r"erotic",
            r"masturbat(e|es|ed|ing|ion)", r"boobs?", r"tits", r"penis(es)?", r"vaginas?",
            r"make love", r"(have|having|had) sex", r"strip(per|pers|tease)",
        ),
        "hate": (
            r"nigg(er|ers|a|as|ah)", r"fag(s|got|gots)?", r"retard(s|ed)?", r"kikes?", r"spics?",
            r"chinks?", r"trann(y|ies)", r"wetbacks?", r"dykes?",
            r"(hate|kill) (all )?(the )?(black|white|brown|jewish|muslim|gay|chinese|mexican|disabled) (people|kids|children|persons)",
            r"(blacks|jews|muslims|gays|immigrants) (are|should) (bad|evil|die|go away|be killed)",
            r"(all )?(black|white|brown|gay|jewish|muslim|chinese|asian|disabled) people (are|is|should|must|don'?t deserve)\b.{0,50}\b(dirty|stupid|evil|bad|disgusting|thieves|animals|vermin|thrown out|go away|leave|die|disappear|deserve)",
            r"(all )?(blacks|jews|muslims|gays|immigrants|refugees|arabs|mexicans) (are|is|should|must|don'?t deserve)\b.{0,50}\b(dirty|stupid|evil|bad|disgusting|thieves|animals|vermin|thrown out|go away|leave|die|disappear|deserve)",
        ),
        "gore": (
            r"gore", r"gory", r"guts", r"entrails", r"intestines", r"decapitat(e|es|ed|ing|ion)",
            r"behead(s|ed|ing)?", r"dismember(s|ed|ing|ment)?", r"disembowel(s|ed|led|ing)?",
            r"tortur(e|es|ed|ing|er|ers)", r"massacr(e|es|ed|ing)", r"slaughter(s|ed|ing)?",
            r"murder(s|ed|ing|er|ers|ous)?", r"stab(s|bed|bing|bings)?", r"mutilat(e|es|ed|ing|ion)",
            r"corpses?", r"blood (spurt|gush|pour|splatter|squirt)(s|ed|ing)?",
            r"(pool|pools|puddle) of blood", r"blood (sprayed|spurted|gushed|splattered|squirted|everywhere|all over)", r"covered in blood", r"(head|heads|arms?|legs?|fingers?|ears?) (was |were |got |gets |get )?(chopped|cut|ripped|torn|sliced|hacked) off", r"(cut|chop|chopped|sliced|hacked|ripped|tore) off (the |his |her |their |its |your |my |[a-z]+'s )?(head|heads|arms?|legs?|throat)", r"blood[- ]?(soaked|stained|bath|bathed)",
            r"(cut|chop|chopped|slit|slits|slitting) (off )?(his|her|their|its|your|my) (head|heads|throat|throats)",
            r"(eyes?|heads?|limbs?) (ripped|torn|gouged) (out|off)", r"skin (him|her|them) alive",
        ),
        "dangerous": (
            r"cocaine", r"heroin", r"meth(amphetamine)?", r"crystal meth", r"marijuana", r"drugs",
            r"get high", r"bombs?", r"explosives?", r"grenades?", r"cigarettes?", r"vap(e|es|ing)",
            r"how (to|do you|can i) (make|build) (a )?(bomb|gun|poison|explosive|weapon)s?",
            r"(shoot|stab|poison) (people|someone|somebody|my (teacher|mum|mom|dad|sister|brother|friend))",
            r"play(ing)? with (matches|lighters)", r"(smoke|smoking|smoked|buy|get|some) (weed|pot|joints?|crack)", r"razor blades?", r"don'?t tell (your|ur) (parents|mum|mom|dad|mommy|mummy|daddy|teacher|family)", r"come (here |over )?(alone|all alone|by yourself|on your own)", r"(visit|meet|see) me\b.{0,40}\b(alone|by yourself|on your own)", r"(drink|drinking) (bleach|poison)",
        ),
        "profanity": (
            r"fuck(s|ed|er|ers|ing|in)?", r"motherfuck(er|ers|ing)", r"shit(s|ty|ting|head)?", r"bullshit",
            r"bitch(es|y)?", r"bastards?", r"assholes?", r"arseholes?", r"cunts?", r"dicks?head",
            r"dickheads?", r"piss(ed|ing)? off", r"wtf", r"stfu", r"goddamn(it)?", r"damn it",
            r"son of a bitch", r"wank(er|ers|ing)?", r"twats?", r"crap(py)?", r"bollocks",
            r"[a-z]\*{2,}[a-z]*",  # Whisper writes sworn words as "f***" or "s**t"
        ),
        "violence": (
            r"kill(s|ed|ing|er|ers)?", r"die(s|d)?", r"dying", r"dead", r"dead bod(y|ies)", r"death", r"deadly",
            r"fight(s|ing)?", r"fought", r"punch(es|ed|ing)?", r"kick(s|ed|ing)? (him|her|them|you)",
            r"shoot(s|ing)?", r"shot", r"guns?", r"weapons?", r"swords?", r"knife", r"knives",
            r"wars?", r"blood", r"bloody", r"bleed(s|ing)?", r"bled", r"wound(s|ed)?", r"attack(s|ed|ing)?",
            r"poison(s|ed|ing|ous)?", r"devour(s|ed|ing)?", r"strangl(e|es|ed|ing)", r"drown(s|ed|ing)?",
            r"battles?", r"hunt(s|ed|ing|er|ers)? (him|her|them) down", r"ate (him|her|them) up",
            r"eat (you|him|her|them) up",
        ),
        "rude": (
            r"stupid", r"idiots?", r"dumb", r"shut up", r"moron(s|ic)?", r"loser", r"i hate you",
            r"ugly", r"fat (pig|cow)", r"poo(p|py)?head",
        ),
        "peril": (
            r"scar(y|ier|iest|ed)", r"afraid", r"fright(ened|ening|ful)?", r"terrif(ied|ying)",
            r"monsters?", r"witch(es)?", r"ghosts?", r"danger(ous)?", r"trapped", r"nightmares?",
            r"screams?", r"scream(ed|ing)", r"growl(s|ed|ing)?", r"wicked", r"evil",
        ),
    },
    "fr": {
        "self_harm": (
            r"(me|te) (tuer|suicider|faire du mal|couper)", r"suicid(e|es|er|aire)", r"automutilation",
            r"(je veux|j'ai envie de|envie de) mourir", r"(en finir|mettre fin) (avec|a) (la|ma) vie", r"taillad(e|er|ee|a|ait) (les|ses|mes) (poignets|veines)", r"(ouvert|coupe) les veines",
        ),
        "sexual": (
            r"sexe?s?", r"sexy", r"sexuel(le|les|s)?", r"porno(graphie|graphique)?s?", r"viol(s|er|e|es|ee|ees|ent|eur|eurs)",
            r"(photos?|images?) (toute?s? )?nue?s?", r"nichons?", r"seins nus", r"penis", r"vagins?",
            r"faire l'amour", r"couch(e|er|erent|ait|aient) ensemble", r"erotique", r"masturb(er|ation|e)",
        ),
        "hate": (
            r"negres?", r"negresses?", r"bougnoules?", r"youpins?", r"pedes?", r"tapettes?", r"gouines?",
            r"bicots?", r"(tous les|toutes les|les) (arabes|noirs|juifs|musulmans|etrangers|homosexuels|gitans|immigres) (sont|doivent|devraient)\b.{0,50}\b(voleurs|sales|betes|mechants|chasser|partir|mourir|degager|disparaitre)", r"(je deteste|il faut tuer) (les )?(noirs|juifs|musulmans|arabes|homosexuels|etrangers)",
        ),
        "gore": (
            r"gore", r"decapit(e|er|es|ee|ees|ation|a)", r"egorg(e|er|es|ee|ees|ea|eait)", r"massacr(e|er|es|ee|ees|a)",
            r"tortur(e|er|es|ee|ees|a|ait)", r"meurtr(e|es|ier|iers|iere)", r"assassin(e|er|es|ee|at|ats|a)?",
            r"cadavres?", r"entrailles", r"tripes", r"boyaux", r"poignard(e|er|ee|a)",
            r"(mare|flaque|bain) de sang", r"(couper|coupa|coupe|trancher|trancha) (la tete|la gorge)",
            r"demembr(er|e|ee|a)", r"demembr(es|ees|ement)", r"(trancha|tranche|coupa|coupe|arracha|arrache) (la|sa|leur|les) (tete|tetes|gorge)", r"sang (a )?gicl(e|a|ait|er)", r"couverte?s? de sang",
        ),
        "dangerous": (
            r"drogues?", r"cocaine", r"cannabis", r"bombes?", r"explosifs?", r"grenades? (a main)?",
            r"cigarettes?", r"comment (fabriquer|faire) (une |un )?(bombe|arme|poison|explosif)",
            r"jouer avec (des|les) allumettes", r"coke", r"(fume|fumer|fumaient|fumait|fument) (des|un|du) (joints?|shit|cannabis)", r"sniff(e|er|ent|ait|aient) (de la|la|du)", r"lames? de rasoir", r"ne (le |leur )?(dis|dites) (rien|pas) (a|à) (tes|vos) parents", r"(viens|venez|vient)\b.{0,30}\btout(e)? seul(e)?", r"boire (de l'eau de javel|du poison)",
        ),
        "profanity": (
            r"merde", r"putain", r"connard(s|e|es)?", r"connasses?", r"salop(e|es|ard|ards)", r"bordel", r"encule(s|e|es)?",
            r"nique", r"niquer", r"ta gueule", r"bite", r"couilles?", r"con(ne|nes)", r"chiant(e|s|es)?",
            r"fils de pute", r"pute", r"[a-z]\*{2,}[a-z]*",
        ),
        "violence": (
            r"tu(er|ee|ees|es|ait|aient|erent|a)", r"tue", r"mort(e|s|es)?", r"mourir", r"meur(t|ent)", r"mourut",
            r"sang", r"blesse(r|e|es|ees|ure|ures)?", r"combat(s|tre|tit)?", r"batailles?", r"armes?",
            r"epees?", r"couteaux?", r"fusils?", r"pistolets?", r"guerres?", r"empoisonn(e|er|ee|ait|a)",
            r"poison", r"devor(e|er|ee|a|ait|erent)", r"etrangl(e|er|ee|a)", r"noy(e|er|ee|a|ait)",
            r"tirer sur", r"se battre", r"battu(e|s)?",
        ),
        "rude": (
            r"stupides?", r"idiot(e|s|es)?", r"imbeciles?", r"tais[- ]toi", r"debiles?", r"je te deteste",
            r"moche", r"nul(le)?s? (comme|de)",
        ),
        "peril": (
            r"peur", r"effray(e|ee|ant|ante|er|a)", r"terrifi(e|ee|ant|ante|a)", r"monstres?",
            r"sorcier(e|es|s)?", r"fantomes?", r"danger(eux|euse)?", r"piege(e|s)?", r"cauchemars?",
            r"hurl(er|a|ait)", r"mechant(e|s|es)?",
        ),
    },
    "de": {
        "self_harm": (
            r"(mich|dich) (umbringen|toten|ritzen|verletzen)", r"(mich|dich|sich) (umbringen|umzubringen|toten|ritzen|verletzen)", r"(ritzte|ritzt|ritzten) sich", r"selbstmord", r"suizid(al)?",
            r"(will|mochte) (nicht mehr leben|sterben)", r"ritzen",
        ),
        "sexual": (
            r"sex", r"sexy", r"porno[a-z]*", r"sexuell(e|en|er|es)?", r"porno(s|grafie|graphie)?", r"vergewaltig(en|t|te|ten|ung)",
            r"nacktbilder", r"nacktfotos", r"titten", r"penis", r"vagina", r"ficken", r"gefickt", r"erotisch(e|en)?",
            r"liebe machen", r"geil",
        ),
        "hate": (
            r"neger(n|in)?", r"kanake(n)?", r"schwuchtel(n)?", r"judensau", r"zigeuner(pack)?", r"kameltreiber", r"(alle )?(juden|muslime|auslander|schwarzen|turken|araber|fluchtlinge|schwulen) (sind|sollten|mussen)\b.{0,50}\b(bose|dreckig|dumm|verschwinden|raus|sterben|weg|diebe)",
            r"(ich hasse|man muss|tote[tn]?) (alle )?(schwarzen|juden|muslime|auslander|schwulen)",
        ),
        "gore": (
            r"gemetzel", r"massaker", r"blutbad", r"folter(n|t|te|ten)?", r"gefoltert", r"ermord(en|et|ete|eten)",
            r"mord(e|es)?", r"morder(s|in)?", r"leiche(n)?", r"enthaupt(en|et|ete|ung)", r"kopf ab(schlagen|geschlagen|gehackt)",
            r"(kehle|gurgel) (durch|auf)(schneiden|geschnitten)", r"eingeweide", r"gedarme", r"zerstuckel(n|t|te)", r"kopf ab(schlagen|geschlagen|gehackt)?", r"blut spritz(te|t|ten|end)", r"blutuberstromt(e|en|er)?", r"leichenteile?",
            r"erstoch(en)?", r"erstach", r"abgeschlachtet", r"abschlachten",
        ),
        "dangerous": (
            r"drogen", r"kokain", r"heroin", r"crystal meth", r"haschisch", r"bomben?", r"sprengstoff",
            r"granaten?", r"[a-z]+bomben?", r"rasierklingen?", r"sag(s)? (es )?(nicht|niemandem|keinem) (deinen eltern|deiner mama|deinem papa)", r"komm\b.{0,30}\ballein", r"zigarette(n)?", r"wie (baue|mache|bastle) ich (eine |ein )?(bombe|waffe|gift)",
            r"mit streichholzern spielen", r"(trinke|trinken) (bleiche|gift)",
        ),
        "profanity": (
            r"schei(ss|s)(e|er|en|kerl)?", r"arschloch(er)?", r"arsch", r"fotze(n)?", r"wichser", r"hurensohn",
            r"verdammte?(r|n|s)? scheisse", r"verpiss dich", r"fick dich", r"mistkerl", r"drecksau",
            r"[a-z]\*{2,}[a-z]*",
        ),
        "violence": (
            r"tot(e|en|er|es)?", r"tote(t|te|ten)", r"toten", r"getotet", r"umbringen", r"umgebracht",
            r"sterben", r"stirbt", r"starb(en)?", r"gestorben", r"tod", r"blut", r"blutig(e|en|er)?",
            r"kampf(en|t|te|ten)?", r"kampf", r"gekampft", r"schiess(en|t)", r"schoss(en)?", r"erschossen",
            r"gewehr(e)?", r"pistole(n)?", r"waffe(n)?", r"schwert(er)?", r"messer", r"krieg(e)?",
            r"verwund(et|ete|eten|ung)", r"gift", r"vergift(et|ete|en)", r"fress(en|t)", r"frass(en)?",
            r"gefressen", r"erwurg(en|t|te)", r"ertrank(en)?", r"ertrunken", r"ertranken",
            r"schlug (ihn|sie|es) tot", r"erschlagen",
        ),
        "rude": (
            r"dumm(e|er|kopf|kopfe)?", r"idiot(en)?", r"blod(e|er|mann)?", r"halt (den|die) (mund|klappe)",
            r"ich hasse dich", r"hasslich", r"doof(e|er)?",
        ),
        "peril": (
            r"angst", r"angstlich", r"furcht(bar|sam)?", r"furchte(te|ten|n)?", r"erschrocken", r"erschrak",
            r"monster", r"hexe(n)?", r"gespenst(er)?", r"geist(er)?", r"gefahr", r"gefahrlich(e|en|er)?",
            r"albtraum", r"alptraum", r"schreckliche?[nrs]?", r"bose(n|r|s)?", r"bosewicht",
        ),
    },
}

# Long, unambiguous words also caught with one letter wrong (a typo, or Whisper's spelling).
# Short or common words are left out: "heroin" is one letter from "heroine", "mord" from "mond".
FUZZY: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "self_harm": ("suicide", "suicidal"),
        "gore": ("murdered", "murderer", "massacre", "slaughter", "slaughtered", "decapitate", "decapitated", "torture", "tortured", "beheaded"),
        "sexual": ("pornography", "masturbate"),
        "dangerous": ("cocaine", "cigarette", "explosive"),
        "profanity": ("motherfucker", "bullshit"),  # not "fucking": one letter from "sucking"
    },
    "fr": {
        "self_harm": ("suicide", "suicider"),
        "gore": ("massacre", "decapite", "egorger", "meurtrier", "torturer"),
        "dangerous": ("cocaine", "cigarette"),
    },
    "de": {
        "self_harm": ("selbstmord",),
        "gore": ("abgeschlachtet", "enthauptet", "ermordet", "gefoltert"),
        "sexual": ("vergewaltigt", "vergewaltigung"),
        "dangerous": ("sprengstoff", "zigarette"),
    },
}
