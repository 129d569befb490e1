"""French: what the child hears and what the app listens for."""

from lang import Language

_STREET = r"rue|avenue|av|boulevard|bd|chemin|allee|impasse|place|route|quai"
_SCHOOL = r"ecole|college"

LANGUAGE = Language(
    code="fr",
    name="French",
    # --- what the child hears ---
    sorry="Oups, mon livre d'histoires s'est coincé. Tu peux me redemander ?",
    too_long="Ça fait beaucoup de mots ! Tu peux me le dire plus court ?",
    acknowledgements={
        "new_story": ("Oh, j'adore cette idée ! Je réfléchis...", "Quelle bonne idée ! Voici une histoire...",
                      "Hmm, je cherche une belle histoire..."),
        "continue": ("Voyons ce qui se passe ensuite...", "Et maintenant ? Je réfléchis..."),
        "change": ("Oh, une nouvelle idée ! Je réfléchis...", "D'accord, on change l'histoire..."),
        "question": ("Bonne question ! Je réfléchis...", "Hmm, laisse-moi réfléchir..."),
        "choice": ("Voyons où ça nous mène...", "Oh, c'est parti..."),
        "recap": ("Je te rappelle...", "Souvenons-nous de l'histoire..."),
        "retell": ("On la réécoute !", "Encore ? Avec plaisir..."),
        "lesson": ("Oh, apprenons ça ensemble !", "Quelle belle chose à apprendre..."),
    },
    redirect_topics=("un petit renard qui trouve une pierre brillante", "un pingouin qui veut voler", "un escargot qui fait la course avec un lapin",
                     "un gentil dragon qui fait des biscuits", "un bouton perdu qui retrouve son manteau"),
    redirect="Hmm, choisissons une autre aventure ! Voici une histoire sur {topic}.",
    redirect_request="Raconte-moi une histoire sur {topic}.",
    self_harm="Ça a l'air d'être un très gros sentiment. S'il te plaît, parles-en tout de suite à un adulte de confiance, "
              "comme ta maîtresse ou ta famille. Je suis là pour une histoire douce quand tu veux.",
    care="Merci de me l'avoir dit. Ça a l'air vraiment difficile. S'il te plaît, parles-en aujourd'hui à un adulte "
         "de confiance, comme ta maîtresse.",
    privacy="Gardons les noms, les adresses et les numéros de téléphone secrets, rien que pour toi et ta famille.",
    closing="Et c'est ainsi que tout le monde rentra sain et sauf, but un bon chocolat chaud et dormit heureux. Fin.",
    story_end="Et voilà, c'est la fin de notre histoire pour aujourd'hui.",
    nothing_to_repeat="Je ne t'ai encore rien raconté ! Quelle histoire veux-tu ?",
    mode_instructions={
        "continue": "Continue l'histoire que tu racontes, là où elle s'est arrêtée.",
        "change": "Raconte l'histoire à nouveau, changée comme l'enfant le demande.",
        "question": "Réponds à l'enfant simplement et brièvement, en deux ou trois phrases. Si c'est à propos de "
                    "l'histoire que tu as racontée, réponds d'après cette histoire. Ne commence pas une nouvelle histoire.",
        "recap": "Dis en {recap} phrases courtes de quoi parlait l'histoire que tu as racontée : qui était dedans, "
                 "ce qui s'est passé et comment elle a fini. Ne commence pas une nouvelle histoire.",
        "retell": "Raconte la même histoire depuis le début, avec les mêmes personnages et les mêmes événements, "
                  "avec des mots nouveaux.",
        "lesson": "Apprends à l'enfant ce qu'il veut savoir par une courte histoire pour son âge : glisse-y un ou "
                  "deux faits simples et vrais que l'histoire rend clairs, et finis-la avec chaleur.",
        "choice": "Continue l'histoire selon le choix de l'enfant et mène-la à une fin heureuse.",
    },
    child_said="L'enfant a dit : {text}",
    quiz_intro="Maintenant, j'ai une question pour toi !",
    praise=("Oui ! C'est ça, bravo !", "Super écoute ! C'est exactement ça !", "Tu as trouvé ! Génial !"),
    hint="Bien essayé ! Un petit indice : {hint} Qu'en penses-tu ?",
    dont_know_hint="Ce n'est pas grave ! Un petit indice : {hint} Tu veux deviner ?",
    tell="Bien essayé ! La réponse était : {answer}.",
    quiz_done="C'était amusant ! Tu as très bien écouté. Tu veux une autre histoire ?",
    quiz_stopped="D'accord, plus de questions pour l'instant !",
    no_story="D'abord une histoire, et ensuite je te poserai des questions ! Elle parle de quoi ?",
    no_question="Hmm, je ne trouve pas de bonne question sur celle-là. Tu veux une autre histoire ?",
    who_question=("De qui parlait l'histoire ?", "Ça commence par la lettre {letter}."),
    reask_choice="Hmm, lequel : {a}, ou {b} ?",
    story_picks="Disons : {choice} !",
    child_picked="Bon choix : {choice} !",
    # --- what the app listens for ---
    story_prompt="Raconte-moi une histoire de dragon, de princesse, de renard, de robot ou de licorne. Et après ?",
    stop_words=("stop", "arrête", "arrêtes", "arrête-toi", "tais-toi", "ça suffit"),
    ask_for_questions=r"pose[- ]moi (une |des )?questions?|interroge[- ]moi",
    ask_to_choose=r"je (veux|peux) choisir|laisse[- ]moi choisir|je choisis",
    choice_or="ou",
    choice_stem=r"^(est-ce que|est-ce qu')\s*(le |la |les |l')?\w+\s+(doit|devrait|va)\s+|^(doit|devrait|va)[- ]t?-?(il|elle)\s+|^faut-il\s+",
    choice_ordinals=(r"\b(premier|premiere|1)\b", r"\b(deuxieme|second|seconde|l'autre|deux|2)\b"),
    choice_stop_words=frozenset("un une le la les l de du des aller dans sur il elle ou et doit devrait va".split()),
    dont_know=r"je (ne )?sais pas|j'sais pas|sais pas|aucune idee|j'ai oublie|je me souviens pas",
    yes_no=("oui", "non"),
    answer_stop_words=frozenset("un une le la les l de du des et ou mais il elle ils elles est etait a au aux en dans sur pour parce que qui avec".split()),
    articles=r"(?:(?:le|la|les|un|une)\s+|l')",
    not_characters=frozenset({"fois", "jour", "matin", "soir", "nuit", "peu", "mal"}),
    nouns_capitalised=False,
    intent_cues={
        "repeat": (r"^(quoi|hein|pardon|comment)\W*$", r"tu (as|a) dit quoi", r"qu'est-ce que tu (as|a) dit", r"répète",
                   r"(pas|n'ai pas) (bien )?entendu", r"redis", r"j'ai pas compris"),
        "recap": (r"c'était quoi (l'histoire|déjà)", r"ça parlait de quoi", r"de quoi (ça|elle) parl", r"rappelle", r"résum",
                  r"j'ai oublié", r"qu'est-ce qui s'est passé dans l'histoire"),
        "retell": (r"raconte[- ]la (encore|de nouveau)", r"la même( histoire)?", r"depuis le début", r"encore une fois",
                   r"réentendre", r"recommence"),
        "lesson": (r"apprends[- ](moi|nous)", r"apprendre", r"leçon", r"explique[- ]moi .{0,40}histoire",
                   r"histoire qui (explique|apprend)"),
        "change": (r"fais[- ]en", r"change", r"plutôt", r"à la place", r"cette fois", r"et si"),
        "continue": (r"la suite", r"et après", r"et ensuite", r"continue", r"encore"),
    },
    question_words=r"pourquoi|qu'est-ce|quel|quelle|qui|où|quand|comment|est-ce|c'est qui",
    story_words=r"histoire|conte|raconte",
    abbreviations=frozenset({"mr", "mrs", "ms", "dr", "st", "prof", "e.g", "i.e"} | {"mm", "mme", "mlle", "mgr", "pr", "ste", "ex", "p.ex", "cf"}),
    spaced_closers="»!?",  # French puts a (non-breaking) space before ! ? and inside « »
    lone_i_is_a_word=False,
    number_dot_is_ordinal=False,
    open_endings=frozenset({
        "et", "ou", "mais", "donc", "car", "parce", "que", "qu", "quand", "si", "comme", "alors", "puis",
        "le", "la", "les", "l", "un", "une", "des", "du", "de", "d", "ce", "cet", "cette", "ces",
        "mon", "ma", "mes", "ton", "ta", "tes", "son", "sa", "ses", "notre", "votre", "leur",
        "à", "au", "aux", "avec", "sans", "pour", "sur", "sous", "dans", "chez", "vers", "par", "entre", "après", "avant",
        "qui", "dont", "où", "lequel", "laquelle",
        "euh", "heu", "ben", "bah", "hum", "hmm", "genre",
        "est", "sont", "était", "veux", "voudrais", "peux", "raconte", "très", "plus",
    }),
    open_in_question=frozenset({"et", "ou", "mais", "parce", "le", "la", "les", "l", "un", "une", "des", "du", "d", "mon", "ma", "mes",
                                "ton", "ta", "tes", "son", "sa", "ses", "qui", "dont", "lequel", "laquelle", "euh", "heu"}),
    elision=True,
    # --- what the safety rules look for ---
    safety_words={
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
    safety_fuzzy={
        "self_harm": ("suicide", "suicider"),
        "gore": ("massacre", "decapite", "egorger", "meurtrier", "torturer"),
        "dangerous": ("cocaine", "cigarette"),
    },
    real_words_near_fuzzy=frozenset(),
    # French numbers are said in pairs ("zéro six, douze, trente-quatre"), so the tens count too.
    digit_words="zero|un|deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|treize|quatorze|quinze|seize|vingt|trente|quarante|cinquante|soixante|quatre-vingts?|[a-z]+(?:-[a-z]+)+",
    phone_min_words=4,
    spoken_at_dot=("arobase", "point"),
    name_intro=r"je m'appelle|mon nom est|mon nom c'est",
    weak_intro=r"je suis",
    not_names=frozenset({"et", "mais", "je", "j", "un", "une", "le", "la", "tres", "trop", "pas", "content", "contente", "triste", "ans", "en", "a", "de", "ici"}),
    common_after_name=frozenset({"et", "mais", "aussi", "raconte", "tu", "s'il", "merci", "bonjour", "salut", "oui", "non", "peux", "j'ai", "je", "est-ce", "aujourd'hui"}),
    common_suffixes=(),
    personal_patterns=(
        ("address", rf"\b\d+(?:\s?(?:bis|ter))?,?\s+(?:{_STREET})\b"),
        ("address", rf"\bj'habite (?:au |a |le )?(?:\d+|(?:{_STREET})\b)"),
        ("school", rf"\b(?:je vais|je suis|mon ecole|mon college)\b.{{0,12}}\b(?:{_SCHOOL})\s+(?!maternelle|primaire|de musique|de danse)[a-z'-]{{3,}}"),
        ("school", rf"\bmon (?:{_SCHOOL}) (?:s'appelle|c'est) [a-z'-]+"),
        ("zip", r"\bcode postal\b"),
    ),
)
